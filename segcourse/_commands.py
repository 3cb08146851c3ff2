"""The command-line dispatch of ``python -m segcourse`` and ``python -m coursetools``.

A command lives in its own module, which provides ``add_arguments(parser)`` and ``run(args) -> int``
(and optionally ``parse_args(parser, argv)`` to parse its own arguments, e.g. to pass the rest on to a
sub-tool verbatim). Only the invoked command's module is imported, so a slow import (torch, Sphinx,
JupyterLab) is paid only by the commands that need it. Standard library only: ``coursetools`` runs its
offline installer with it on a bare Python.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

__all__ = ["command_parser", "dispatch"]


def command_parser(prog: str, description: str, commands: dict[str, tuple[str, str]]) -> argparse.ArgumentParser:
    """The top-level parser: one sub-command per entry of ``commands`` (``name -> (module, one-line help)``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in commands.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def dispatch(parser: argparse.ArgumentParser, commands: dict[str, tuple[str, str]], argv: list[str], *,
             before_import: Callable[[str], None] | None = None) -> int:
    """Run the command named by ``argv[0]`` with the rest of ``argv``; return its exit status.

    No command, or ``-h``/``--help``: the help (exit status 2 without a command, 0 when asked for).
    An unknown command is refused by ``parser.error``. ``before_import(name)`` runs once the command
    is known, before its module is imported.
    """
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in commands:
        parser.error(f"unknown command {name!r}; choose from {', '.join(commands)}")
    if before_import is not None:
        before_import(name)
    module = importlib.import_module(commands[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"{parser.prog} {name}", description=commands[name][1])
    module.add_arguments(cmd_parser)
    parse = getattr(module, "parse_args", None)
    args = parse(cmd_parser, argv[1:]) if parse else cmd_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)
