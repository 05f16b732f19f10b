"""The `ssm-mbrl` command line."""
