"""The frame every explorer shares: controls on top, numbers and a figure below.

An explorer is a dict of controls and a pure ``render() -> (html, figure)``; :func:`explorer`
wires them together and redraws on every control change. The figure is drawn to PNG and
shown in an ``ipywidgets.Image``, so an explorer behaves the same in JupyterLab, in VS Code
and in a test without a front end.
"""

from __future__ import annotations

import html
import io
from typing import Any, Callable, Sequence

import ipywidgets as widgets


def figure_to_png(fig, dpi: int = 72) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (no figure piles up in the kernel)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def html_table(rows: Sequence[tuple[str, str]], css_class: str = "segcourse-explorer") -> str:
    """``[(name, shown value), ...]`` as a two-column HTML table, values in bold (both escaped)."""
    cells = "".join(f"<tr><td style='padding-right:1em'>{html.escape(k)}</td><td><b>{html.escape(v)}</b></td></tr>"
                    for k, v in rows)
    return f"<table class='{css_class}'>{cells}</table>"


def explorer(controls: dict[str, widgets.Widget], render: Callable[[], tuple[str, Any]], *,
             figure_first: bool = False) -> widgets.VBox:
    """Assemble an explorer and draw it once.

    Args:
        controls: name -> widget; every widget with a ``value`` re-renders the explorer when it changes
            (buttons are laid out but wired by the caller).
        render: returns ``(html, figure)`` for the current control values; ``figure`` may be None
            to keep the previous picture.
        figure_first: put the figure left of the numbers (default: numbers first).

    Returns:
        An ``ipywidgets.VBox`` with ``.controls`` (the dict), ``.summary`` (``HTML``), ``.picture``
        (``Image``) and ``.refresh()``.
    """
    summary = widgets.HTML()
    picture = widgets.Image(format="png")

    def refresh(*_: Any) -> None:
        text, fig = render()
        summary.value = text
        if fig is not None:
            picture.value = figure_to_png(fig)

    for control in controls.values():
        if "value" in control.trait_names():
            control.observe(refresh, names="value")
    body = [picture, summary] if figure_first else [summary, picture]
    box = widgets.VBox([widgets.HBox(list(controls.values())), widgets.HBox(body)])
    box.controls, box.summary, box.picture, box.refresh = controls, summary, picture, refresh
    refresh()
    return box
