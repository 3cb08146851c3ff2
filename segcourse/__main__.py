"""Command line: ``python -m segcourse COMMAND ...`` (also ``segcourse COMMAND`` once installed).

The commands a learner or instructor runs with the course installed: check the machine (doctor),
build the datasets, pre-train the course backbones, train a lesson model, export and serve it.
The course's own machinery (running every lesson, stored outputs, the site, the learner notebooks,
the wheelhouse) is ``python -m coursetools`` in a checkout.

Each command is a module of its own (see :mod:`segcourse._commands`).
"""

from __future__ import annotations

import sys

from ._commands import command_parser, dispatch

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
    return dispatch(command_parser("python -m segcourse", __doc__.splitlines()[0], COMMANDS), COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
