"""`python -m ssm_mbrl_ros.cli` runs the `ssm-mbrl` console entry."""
import sys

from ssm_mbrl_ros.cli.main import main

sys.exit(main())
