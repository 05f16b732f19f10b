"""`ssm-mbrl`: one console entry, one module per subcommand (each has add_parser + run)."""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand name -> module under ssm_mbrl_ros.cli; each module defines
#   add_parser(subparsers) (registering its command(s), each with set_defaults(run=...))
SUBCOMMANDS = {
    "train": "train",
    "ship": "ship",
    "train-offline": "train_offline",
    "evaluate": "evaluate",
    "bench": "bench",
    "bags": "bags",
    "launch": "launch",
    "fc-sim": "fc_sim",
    "fly-sim": "fc_sim",
    "study": "study",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ssm-mbrl",
        description=(
            "Model-based RL with S5 state-space world models for quadrotors: simulate, evaluate, "
            "benchmark. Run `ssm-mbrl COMMAND --help` for each command's options."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the package version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(SUBCOMMANDS.values()):  # a module may register several commands
        importlib.import_module(f"ssm_mbrl_ros.cli.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from ssm_mbrl_ros import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    return dispatch(args, f"ssm-mbrl {args.command}")


def dispatch(args, prog: str) -> int:
    """Run a parsed subcommand; config errors print `PROG: error: ...` and exit 2, Ctrl-C exits 130."""
    import signal
    import threading

    from ssm_mbrl_ros.core.config import ConfigError

    if threading.current_thread() is threading.main_thread():
        # Ctrl-C works even where SIGINT arrives ignored: a background job of a non-interactive shell inherits SIG_IGN,
        # and Python then installs no KeyboardInterrupt handler (a launched graph could not be stopped)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
