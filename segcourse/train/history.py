"""The record of a training run: one dict per epoch, the best epoch, and a picture of it.

Each record holds plain JSON values only (numbers, strings, lists of numbers), so a
history can be saved next to a checkpoint and read back anywhere::

    {"epoch": 3, "train_loss": 0.21, "val_loss": 0.25, "val_miou": 0.81, "val_pixel_accuracy": 0.95,
     "val_dice": 0.89, ..., "seconds": 4.2, "images_per_s": 38.0, "lr": 0.001}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: keys ending like this are "lower is better", and so are the parts of a loss (``val_loss_mask``);
#: every other monitored key is "higher is better"
_MINIMISE_SUFFIXES = ("loss", "error", "hd95", "distance")


def monitor_mode(monitor: str) -> str:
    """``"min"`` for losses, their parts and distances, ``"max"`` for scores (``val_miou``, ``val_dice``...)."""
    return "min" if monitor.endswith(_MINIMISE_SUFFIXES) or "_loss_" in monitor else "max"


def is_better(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` improves on ``best`` by more than ``min_delta`` (NaN never improves)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class History:
    """Per-epoch records of a run, and which epoch was best by ``monitor``.

    Attributes:
        records: list of per-epoch dicts (``epoch``, ``train_loss``, ``val_*``, ``seconds``,
            ``images_per_s``, ``lr``).
        monitor: the key that decides the best epoch (e.g. ``"val_miou"``).
        mode: ``"max"`` or ``"min"`` (derived from ``monitor``: losses are minimised).
        stop_reason: why training stopped (``"epochs"``, ``"max_seconds"``, ``"early_stopping"``).
        device, precision: what the run used (strings, for the printout).
        pretrained_loaded: the model's ``pretrained_loaded`` attribute, set by the model builders
            (``True``: ImageNet weights were loaded; ``False``: ``pretrained=True`` found none cached
            and the model trained from scratch; ``None``: the model does not say).
    """

    def __init__(self, records: Iterable[dict] | None = None, monitor: str = "val_miou", mode: str | None = None):
        self.records: list[dict] = [dict(r) for r in (records or [])]
        self.monitor = monitor
        self.mode = mode or monitor_mode(monitor)
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        self.stop_reason: str | None = None
        self.device: str | None = None
        self.precision: str | None = None
        self.pretrained_loaded: bool | None = None

    # -- access -------------------------------------------------------------------------------
    def append(self, record: dict) -> None:
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, key):
        """``history["val_miou"]`` -> the list of that value per epoch; ``history[-1]`` -> the last record."""
        if isinstance(key, (int, slice)):
            return self.records[key]
        if not any(key in r for r in self.records):
            known = sorted({k for r in self.records for k in r})
            raise KeyError(f"{key!r} is not in the history; recorded keys: {', '.join(known)}")
        return [r.get(key, math.nan) for r in self.records]

    @property
    def last(self) -> dict | None:
        return self.records[-1] if self.records else None

    @property
    def best(self) -> dict | None:
        """The record with the best ``monitor`` value (the first one on ties), or ``None``.

        Falls back to the last record when no record holds the monitored key
        (e.g. ``monitor="val_miou"`` but no validation loader was given).
        """
        best = None
        for record in self.records:
            value = record.get(self.monitor)
            if value is not None and is_better(value, None if best is None else best[self.monitor], self.mode):
                best = record
        return best if best is not None else self.last

    # -- saving -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "mode": self.mode, "stop_reason": self.stop_reason, "records": self.records}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        history = cls(data.get("records", []), monitor=data.get("monitor", "val_miou"), mode=data.get("mode"))
        history.stop_reason = data.get("stop_reason")
        return history

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> History:
        return cls.from_dict(json.loads(Path(path).read_text()))

    # -- showing ------------------------------------------------------------------------------
    def table(self, keys: Sequence[str] | None = None, digits: int = 4) -> str:
        """A plain-text table of the scalar columns (``keys`` picks and orders them)."""
        if not self.records:
            return "(empty history)"
        if keys is None:
            keys = [k for k, v in self.records[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        rows = [[_fmt(r.get(k), digits) for k in keys] for r in self.records]
        widths = [max(len(k), *(len(row[i]) for row in rows)) for i, k in enumerate(keys)]
        lines = ["  ".join(k.rjust(w) for k, w in zip(keys, widths))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
        return "\n".join(lines)

    def plot(self, metrics: Sequence[str] | None = None, size: float = 3.2):
        """Loss curves and validation curves (see :func:`plot_history`); returns the Figure."""
        return plot_history(self, metrics=metrics, size=size)

    def __repr__(self) -> str:
        best = self.best
        shown = ""
        if best is not None and self.monitor in best:
            shown = f", best {self.monitor}={best[self.monitor]:.4f} at epoch {best['epoch']}"
        return f"History({len(self.records)} epochs{shown})"


def _fmt(value, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        general = abs(value) >= 1000 or (value != 0 and abs(value) < 1e-3)
        return f"{value:.{digits}g}" if general else f"{value:.{digits}f}"
    return str(value)


#: validation keys drawn by default, in this order, when present (the rest is in ``history.table()``)
_DEFAULT_CURVES = ("val_miou", "val_dice", "val_fg_dice", "val_pixel_accuracy")


def plot_history(history, metrics: Sequence[str] | None = None, size: float = 3.2):
    """Training curves: train/val loss on the left, validation scores on the right.

    Args:
        history: a :class:`History`, a list of per-epoch dicts (``{"epoch": 1, "train_loss": ...,
            "val_loss": ..., "val_miou": ...}``) or a dict of lists.
        metrics: the score keys to draw (default: those of ``_DEFAULT_CURVES`` -- mIoU, mean Dice,
            foreground Dice for binary tasks, pixel accuracy -- that were recorded, or, when none of
            them was, every numeric ``val_*`` key that is not a loss; the rest is in ``history.table()``).

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ValueError: the history is empty.
    """
    import matplotlib.pyplot as plt

    records = getattr(history, "records", history)
    if isinstance(records, dict):
        keys = list(records)
        n = len(next(iter(records.values()))) if records else 0
        records = [{k: records[k][i] for k in keys} for i in range(n)]
    records = list(records)
    if not records:
        raise ValueError("history is empty: nothing to plot")
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(records)]
    numeric = [k for k, v in records[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    loss_keys = [k for k in numeric if k.endswith("loss")]
    if metrics is None:
        metrics = ([k for k in _DEFAULT_CURVES if k in records[0]]
                   or [k for k in numeric if k.startswith("val_") and not k.endswith("loss")])
    fig, axes = plt.subplots(1, 2 if metrics else 1, figsize=(size * (2 if metrics else 1) * 1.3, size), squeeze=False)
    for k in loss_keys:
        axes[0, 0].plot(epochs, [r.get(k, math.nan) for r in records], marker="o", ms=3, label=k)
    axes[0, 0].set_xlabel("epoch")
    axes[0, 0].set_title("loss")
    axes[0, 0].legend(fontsize=8)
    if metrics:
        for k in metrics:
            axes[0, 1].plot(epochs, [r.get(k, math.nan) for r in records], marker="o", ms=3, label=k)
        axes[0, 1].set_xlabel("epoch")
        axes[0, 1].set_title("validation")
        axes[0, 1].legend(fontsize=8)
    fig.tight_layout()
    return fig
