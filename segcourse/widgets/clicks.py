"""Lesson 12's click widget: click positive and negative points, watch the masks and their predicted IoUs.

The image is embedded **once**, when the widget is built (:class:`ClickSession` counts the encoder and
decoder calls, so the lesson can show it); every click runs only the prompt decoder on that cached
embedding -- the reason SAM is split into a heavy encoder and a light decoder.

Plain ipywidgets have no click position on an image, so the picture is a grid of small buttons, one per
``cell x cell`` block of pixels, each coloured like its block (the mask blended in green; clicked cells
marked ``+`` or ``-``): a click on a button is a click at the centre of its block. Beside it, the current
masks are drawn in full resolution with their predicted IoUs (the first click shows SAM's three masks,
the picked one framed; later clicks the single-mask output).

* :class:`ClickSession` -- the pure state: clicks, masks, predicted IoUs (tested without a front end);
* :func:`cell_colours` -- the buttons' colours;
* :func:`click_segmenter` -- the widget: ``.grid`` (the buttons), ``.mode`` (positive / negative),
  ``.undo``, ``.reset``, ``.summary`` (HTML), ``.picture`` (Image), ``.session``.
"""

from __future__ import annotations

import numpy as np
import torch

from ._explorer import figure_to_png, html_table

__all__ = ["ClickSession", "cell_colours", "click_segmenter"]

MASK_GREEN = np.array([40, 200, 80])


class ClickSession:
    """The state behind the widget: one image, its embedding (computed once), the clicks and the masks.

    Args:
        model: a :class:`~segcourse.models.promptable.PromptableSegmenter`.
        image: uint8 ``(H, W, 3)`` (``H, W`` divisible by 4).

    Attributes:
        clicks: ``[(row, col, positive), ...]``; masks: bool ``(K, H, W)``; iou_pred: float ``(K,)``;
        picked: index of the shown mask; encoder_calls, decoder_calls: how often each half ran.
    """

    def __init__(self, model, image: np.ndarray) -> None:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        self.model, self.image = model.eval(), image
        with torch.no_grad():
            self.embedding = model.embed(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
        self.encoder_calls, self.decoder_calls = 1, 0
        self.reset()

    def reset(self) -> None:
        """Forget the clicks (the embedding stays)."""
        self.clicks: list[tuple[int, int, bool]] = []
        self.masks = np.zeros((0, *self.image.shape[:2]), bool)
        self.iou_pred = np.zeros(0)
        self.picked = 0

    @property
    def mask(self) -> np.ndarray:
        """The shown mask, bool ``(H, W)`` (all False before the first click)."""
        return self.masks[self.picked] if len(self.masks) else np.zeros(self.image.shape[:2], bool)

    def click(self, row: int, col: int, positive: bool = True) -> None:
        """Add a click and decode (SAM's rule: three masks for one click, the picked one of highest predicted IoU)."""
        h, w = self.image.shape[:2]
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"click (row={row}, col={col}) is outside the image of shape {(h, w)}")
        self.clicks.append((int(row), int(col), bool(positive)))
        self._decode()

    def undo(self) -> None:
        """Remove the last click."""
        self.clicks = self.clicks[:-1]
        if self.clicks:
            self._decode()
        else:
            self.reset()

    @torch.no_grad()
    def _decode(self) -> None:
        points = torch.tensor([[[c, r] for r, c, _ in self.clicks]], dtype=torch.float32)
        labels = torch.tensor([[1 if p else 0 for _, _, p in self.clicks]])
        previous = None
        if len(self.clicks) > 1 and len(self.masks):                 # the shown mask, for a model that takes it back
            previous = torch.from_numpy(self.mask)[None, None].float()
        masks, iou = self.model.decode(self.embedding, points, labels, multimask=len(self.clicks) == 1, mask_input=previous)
        self.decoder_calls += 1
        self.masks, self.iou_pred = (masks[0] > 0).numpy(), iou[0].numpy()
        self.picked = int(np.argmax(self.iou_pred))


def cell_colours(image: np.ndarray, mask: np.ndarray, cell: int, alpha: float = 0.55) -> np.ndarray:
    """The mean colour of each ``cell x cell`` block, the mask blended in green: uint8 ``(H/cell, W/cell, 3)``."""
    h, w = mask.shape
    if h % cell or w % cell:
        raise ValueError(f"the image {(h, w)} must be divisible by cell={cell}")
    rgb = image.astype(np.float64)
    rgb = np.where(mask[..., None], (1 - alpha) * rgb + alpha * MASK_GREEN, rgb)
    return np.round(rgb.reshape(h // cell, cell, w // cell, cell, 3).mean(axis=(1, 3))).astype(np.uint8)


def _figure(session: ClickSession):
    import matplotlib.pyplot as plt

    k = max(len(session.masks), 1)
    fig, axes = plt.subplots(1, k, figsize=(2.2 * k, 2.4), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(session.image)
        if len(session.masks):
            ax.imshow(np.ma.masked_where(~session.masks[i], session.masks[i]), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
            ax.set_title(f"mask {i}: IoU pred {session.iou_pred[i]:.2f}" + (" *" if i == session.picked else ""), fontsize=8)
        for r, c, p in session.clicks:
            ax.plot(c, r, marker="o", color="lime" if p else "red", markeredgecolor="black", markersize=5)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def click_segmenter(model, image: np.ndarray, *, cell: int = 4):
    """The click widget over ``image`` (uint8 ``(H, W, 3)``); see the module docstring."""
    import ipywidgets as widgets

    session = ClickSession(model, image)
    h, w = image.shape[:2]
    rows, cols = h // cell, w // cell
    mode = widgets.ToggleButtons(options=[("positive (+)", True), ("negative (-)", False)], value=True, description="click")
    undo, reset = widgets.Button(description="undo"), widgets.Button(description="reset")
    summary = widgets.HTML()
    picture = widgets.Image(format="png", layout=widgets.Layout(height="auto", max_width="100%", object_fit="contain"))
    size = "14px"
    buttons = [widgets.Button(description="", tooltip=f"row {r * cell + cell // 2}, col {c * cell + cell // 2}",
                              layout=widgets.Layout(width=size, height=size, padding="0", margin="0", border="0"))
               for r in range(rows) for c in range(cols)]
    grid = widgets.GridBox(buttons, layout=widgets.Layout(grid_template_columns=f"repeat({cols}, {size})",
                                                          grid_gap="0", width="max-content"))

    def refresh() -> None:
        colours = cell_colours(session.image, session.mask, cell)
        marks = {(r // cell, c // cell): "+" if p else "-" for r, c, p in session.clicks}
        for i, b in enumerate(buttons):
            r, c = divmod(i, cols)
            b.style.button_color = "#" + "".join(f"{int(v):02x}" for v in colours[r, c])
            b.description = marks.get((r, c), "")
        ious = ", ".join(f"{v:.2f}" for v in session.iou_pred) or "-"
        summary.value = html_table([("clicks", str(len(session.clicks))), ("predicted IoU", ious),
                                    ("encoder calls", str(session.encoder_calls)), ("decoder calls", str(session.decoder_calls))])
        picture.value = figure_to_png(_figure(session))

    def on_cell(i: int):
        def handler(_):
            r, c = divmod(i, cols)
            session.click(r * cell + cell // 2, c * cell + cell // 2, mode.value)
            refresh()
        return handler

    for i, b in enumerate(buttons):
        b.on_click(on_cell(i))
    undo.on_click(lambda _: (session.undo(), refresh()))
    reset.on_click(lambda _: (session.reset(), refresh()))
    box = widgets.VBox([widgets.HBox([mode, undo, reset]), widgets.HBox([grid, widgets.VBox([summary, picture])])])
    box.grid, box.mode, box.undo, box.reset, box.summary, box.picture, box.session = grid, mode, undo, reset, summary, picture, session
    box.refresh = refresh
    refresh()
    return box
