"""Command line: ``python -m coursetools [--root DIR] COMMAND ...``, run from a checkout of the course.

Each command is a module of its own, imported only when it runs (:mod:`segcourse._commands`), so
``wheelhouse`` runs on a bare Python (standard library and pip only). The checkout is the working
directory or a folder above it, or ``--root`` (:mod:`coursetools.checkout`).
"""

from __future__ import annotations

import sys

from segcourse._commands import command_parser, dispatch

from .checkout import CheckoutNotFound, use

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
    parser = command_parser("python -m coursetools", __doc__.splitlines()[0], COMMANDS)
    parser.add_argument("--root", metavar="DIR", help="the course checkout (default: the working directory or "
                        "the nearest folder above it with solutions/)")
    root = None
    if len(argv) >= 2 and argv[0] == "--root":
        root, argv = argv[1], argv[2:]
    elif argv and argv[0].startswith("--root="):
        root, argv = argv[0].split("=", 1)[1], argv[1:]

    def use_root(_name: str) -> None:
        if root is not None:
            try:
                use(root)
            except CheckoutNotFound as error:
                parser.error(str(error))

    try:
        return dispatch(parser, COMMANDS, argv, before_import=use_root)
    except CheckoutNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
