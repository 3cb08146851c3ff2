"""Execute notebooks headless, in a chosen mode, with nbclient.

``python -m coursetools notebooks execute solutions/04_unet.ipynb --mode smoke`` runs a
notebook top to bottom and stores its outputs in place: that is how the outputs
that nbval compares are produced. :func:`execute_notebook` is also what
``make course`` uses.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from segcourse.config import MODES
from segcourse.constants import MODE_ENV, REPORT_ENV
from segcourse.files import atomic_path

#: The kernel the course's notebooks declare (installed by ``make`` into the virtual environment).
KERNEL_NAME = "segcourse"
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Python (segcourse)", "language": "python"}


@dataclass
class Execution:
    """What running one notebook gave."""

    path: Path
    seconds: float
    ok: bool
    error: str | None = None
    notebook: object = field(default=None, repr=False)


def execute_notebook(path: str | os.PathLike, *, mode: str | None = None, report: str | os.PathLike | None = None,
                     timeout: int = 1800, write_to: str | os.PathLike | None = None) -> Execution:
    """Run a notebook in a fresh kernel of the current Python environment.

    Args:
        path: the ``.ipynb`` file.
        mode: ``smoke``/``quick``/``full`` for the kernel (default: inherit ``$SEGCOURSE_MODE``).
        report: file the lesson's :func:`segcourse.teaching.results.record` calls append to.
        timeout: seconds any one cell may take.
        write_to: where to save the executed notebook (``path`` itself to store outputs in place).
            Written atomically, and only when execution succeeded -- a failed run never
            replaces good outputs.

    Returns:
        An :class:`Execution`; errors are reported in it, not raised.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env_backup = {k: os.environ.get(k) for k in (MODE_ENV, REPORT_ENV, "MPLBACKEND")}
    # Figures render inline, as in JupyterLab, even when the caller uses a non-interactive backend.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    if mode is not None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        os.environ[MODE_ENV] = mode
    if report is not None:
        os.environ[REPORT_ENV] = str(Path(report).resolve())
    # The kernel inherits this process's environment; run it where the notebook lives.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=False, record_timing=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.perf_counter()
    error = None
    # The kernel process's own log (e.g. ipykernel's transport warning) goes to a file, not the
    # console; its tail is shown only when the kernel itself failed.
    kernel_log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
    try:
        client.execute(stderr=kernel_log)
    except CellExecutionError as exc:
        error = _short_error(str(exc))
    except Exception as exc:  # noqa: BLE001 - kernel died, timeout, ...
        kernel_log.seek(0)
        tail = "\n".join(kernel_log.read().strip().splitlines()[-5:])
        error = f"{type(exc).__name__}: {exc}" + (f"\nkernel log:\n{tail}" if tail else "")
    finally:
        kernel_log.close()
        for key, value in env_backup.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - start
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    if write_to is not None and error is None:
        with atomic_path(write_to) as tmp:
            nbformat.write(nb, tmp)
    return Execution(path=path, seconds=seconds, ok=error is None, error=error, notebook=nb)


def _short_error(text: str) -> str:
    """The last meaningful lines of a cell error (the exception, not the whole traceback)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-3:])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("execute", help="run notebooks and store their outputs in place")
    ex.add_argument("paths", nargs="+", type=Path)
    ex.add_argument("--mode", choices=MODES, default="smoke", help="mode to run in (default: smoke, what nbval compares)")
    ex.add_argument("--timeout", type=int, default=1800)


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        result = execute_notebook(path, mode=args.mode, timeout=args.timeout, write_to=path)
        status = "ok" if result.ok else f"FAILED\n{result.error}"
        print(f"{path}  {result.seconds:6.1f} s  {status}")
        failed += not result.ok
    return 1 if failed else 0
