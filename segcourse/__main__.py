"""Command line: ``python -m segcourse COMMAND ...`` (also ``segcourse COMMAND`` once installed).

The commands a learner or instructor runs with the course installed: check the machine (doctor),
build the datasets, pre-train the course backbones, train a lesson model, export and serve it.
The course's own machinery (running every lesson, stored outputs, the site, the learner notebooks,
the wheelhouse) is ``python -m coursetools`` in a checkout.

Each command lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int`` (and optionally ``parse_args(parser, argv)``); only the invoked command's module is imported, so a slow import
(torch, JupyterLab) is paid only by the commands that need it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("segcourse.teaching.doctor", "check the environment: versions, device, mode, datasets, widgets"),
    "data": ("segcourse.data.cli", "build the synthetic datasets / convert real ones"),
    "backbones": ("segcourse.train.course_backbones", "pre-train the course backbones (lessons 03, 05) once and cache them"),
    "train": ("segcourse.train.cli", "train a lesson model from the command line (pre-train before a workshop)"),
    "export": ("segcourse.deploy.cli_export", "export a checkpoint to ONNX (dynamic sizes), checked against PyTorch"),
    "serve": ("segcourse.deploy.cli_serve", "serve a checkpoint or ONNX model over HTTP, with a demo page"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m segcourse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"python -m segcourse {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd_parser)
    # A command may parse its own arguments (e.g. to pass the rest on to a sub-tool verbatim).
    parse = getattr(module, "parse_args", None)
    args = parse(cmd_parser, argv[1:]) if parse else cmd_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
