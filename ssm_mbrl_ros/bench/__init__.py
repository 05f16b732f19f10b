"""Benchmarks behind `ssm-mbrl bench ...`: each writes a JSON of measured numbers."""
