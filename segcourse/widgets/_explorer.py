"""The frame every explorer shares: controls on top, numbers and a figure below.

An explorer is a dict of controls and a pure ``render() -> (html, figure)``; :func:`explorer`
wires them together and redraws on every control change. The figure is drawn to PNG and
shown in an ``ipywidgets.Image``, so an explorer behaves the same in JupyterLab, in VS Code
and in a test without a front end.

Layout rules (seen in JupyterLab in a browser, checked by ``tests/browser``): a control's
description gets the room it needs (ipywidgets cuts descriptions at a fixed width by default:
"drop smal..."), and the figure keeps its aspect ratio (a flex row stretches its items to the
tallest one, which squashes or stretches a picture beside a long table of numbers).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from typing import Any

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


#: Room for a control's description, unless the caller set one (ipywidgets' default cuts at ~80 px).
DESCRIPTION_WIDTH = "initial"


def give_descriptions_room(control: widgets.Widget) -> None:
    """Let ``control``'s description take its natural width, unless a width was set explicitly."""
    style = getattr(control, "style", None)
    if style is not None and "description_width" in style.trait_names() and not style.description_width:
        style.description_width = DESCRIPTION_WIDTH


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
    # Natural size, never stretched by the row (see the module docstring); shrinks to fit, keeping its ratio.
    picture = widgets.Image(format="png", layout=widgets.Layout(height="auto", max_width="100%",
                                                                object_fit="contain"))

    def refresh(*_: Any) -> None:
        text, fig = render()
        summary.value = text
        if fig is not None:
            picture.value = figure_to_png(fig)

    for control in controls.values():
        give_descriptions_room(control)
        if "value" in control.trait_names():
            control.observe(refresh, names="value")
    body = [picture, summary] if figure_first else [summary, picture]
    row = widgets.Layout(align_items="flex-start", flex_flow="row wrap")
    box = widgets.VBox([widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap")),
                        widgets.HBox(body, layout=row)])
    box.controls, box.summary, box.picture, box.refresh = controls, summary, picture, refresh
    refresh()
    return box
