"""``python -m segcourse exercises``: build the learner notebooks, check they are current, list exercises."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="generate notebooks/NN_*.ipynb from solutions/NN_*.ipynb")
    b.add_argument("lessons", nargs="*", metavar="LESSON",
                   help="lessons to build: a number (1 or 01), a stem (01_classical) or a path; default: all")
    b.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 and list the notebooks that are stale, missing or extra")
    b.add_argument("--solutions", type=Path, default=None, metavar="DIR",
                   help="the solution notebooks (default: solutions/ of the repository the working directory is in)")
    b.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                   help="where the learner notebooks go (default: notebooks/ beside the solutions folder)")
    sub.add_parser("list", help="list every registered exercise")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        from .registry import _LOAD_ERRORS, all_exercises

        for ex in all_exercises():
            print(f"{ex.id:>5}  {ex.level:<8} {ex.kind:<9} ~{ex.minutes:>2} min  {ex.title}")
        for module, error in _LOAD_ERRORS.items():
            print(f"error: {module} failed to import: {error}")
        return 1 if _LOAD_ERRORS else 0
    from .build import build

    return build(args.lessons, check=args.check, solutions=args.solutions, notebooks=args.notebooks)
