"""Command line: ``explorer COMMAND ...`` (also ``python -m explorer``).

Each command lives in its own module exposing ``add_parser(subparsers)``; the parser it adds sets ``func``
(called with the parsed arguments, returning an exit code or None). Register a command by adding its
module to COMMANDS; modules are imported when the parser is built, so keep their top level light.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from explorer import __version__
from explorer.config import DATA_ENV

COMMANDS = [
    "explorer.data_cli",
    "explorer.features_cli",
    "explorer.train_cli",
    "explorer.runs_cli",
    "explorer.analyse_cli",
    "explorer.serve_cli",
    "explorer.classify_cli",
    "explorer.protocol_cli",
]

# Errors a user can act on (missing dataset, bad file, bad value): one line on stderr, exit code 2.
USER_ERRORS = (OSError, ValueError)
DEBUG_ENV = "EXPLORER_DEBUG"  # set to 1: such errors raise with their traceback instead


def add_data_option(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """``--data DIR``; a subcommand's copy only overrides the global one when given (SUPPRESS default)."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None if top_level else argparse.SUPPRESS,
        help=f"CIFAR-10 folder or archive (overrides {DATA_ENV})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="explorer", description="Structures Explorer: scattering transforms and CNNs, explored."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_data_option(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        importlib.import_module(module).add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data is not None:
        os.environ[DATA_ENV] = str(args.data)  # everything downstream reads the location from config
    try:
        return args.func(args) or 0
    except USER_ERRORS as exc:
        if os.environ.get(DEBUG_ENV):  # a bug can raise ValueError too: show its traceback on request
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"explorer: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
