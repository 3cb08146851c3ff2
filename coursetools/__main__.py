"""Command line: ``python -m coursetools [--root DIR] COMMAND ...``, run from a checkout of the course.

Each command lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int`` (and optionally ``parse_args(parser, argv)``); only the invoked command's module is
imported, so a slow import (torch, Sphinx) is paid only by the commands that need it, and
``wheelhouse`` runs on a bare Python (standard library and pip only). The checkout is the working
directory or a folder above it, or ``--root`` (:mod:`coursetools.checkout`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "course": ("coursetools.course", "run every solution notebook and write build/course-report.json"),
    "notebooks": ("coursetools.execute", "execute notebooks in place (store outputs) in a chosen mode"),
    "exercises": ("coursetools.learner", "build learner notebooks from the solutions, or check they are current"),
    "coursemap": ("coursetools.coursemap", "update the README course map's times from the notebooks and their stamps"),
    "instructor": ("coursetools.instructor", "the instructor pack: schedules from the measured times, slide figures"),
    "site": ("coursetools.site", "build the course site (HTML, from the solutions' stored outputs) into build/site"),
    "wheelhouse": ("coursetools.wheelhouse", "every pinned wheel in one folder for rooms with no internet (make wheelhouse)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m coursetools", description=__doc__.splitlines()[0])
    parser.add_argument("--root", metavar="DIR", help="the course checkout (default: the working directory or "
                        "the nearest folder above it with solutions/)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    root = None
    if len(argv) >= 2 and argv[0] == "--root":
        root, argv = argv[1], argv[2:]
    elif argv and argv[0].startswith("--root="):
        root, argv = argv[0].split("=", 1)[1], argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    from .checkout import CheckoutNotFound, use

    if root is not None:
        try:
            use(root)
        except CheckoutNotFound as error:
            parser.error(str(error))
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"python -m coursetools {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd_parser)
    # A command may parse its own arguments (e.g. to pass the rest on to a sub-tool verbatim).
    parse = getattr(module, "parse_args", None)
    args = parse(cmd_parser, argv[1:]) if parse else cmd_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except CheckoutNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
