"""TensorBoard logging for :func:`~segcourse.train.fit`: scalars per epoch and a few validation predictions.

``fit(..., log_dir="runs/unet")`` writes one TensorBoard run there; open it with
``tensorboard --logdir runs``. The ``tensorboard`` package is pinned in
``requirements/course.txt``; without it ``fit(log_dir=...)`` stops with an :class:`ImportError`
before training starts (it never drops the option silently).

The logger runs no model of its own: the engine hands it, with each epoch's record, the first
validation images together with their target and the prediction the validation pass already
made, ``(images (n, 3, H, W) float, target (n, H, W) int64, pred (n, H, W) int64)``.

(Named ``run_log``, not ``logging``, so that it never shadows the standard library's module.)
"""

from __future__ import annotations

import torch

from ..constants import IGNORE_INDEX

INSTALL_HINT = ("fit(log_dir=...) writes TensorBoard logs and needs the 'tensorboard' package: "
                "pip install -r requirements/course.txt (or pip install tensorboard), or leave log_dir=None")


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be used (it needs the ``tensorboard`` package)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def require_tensorboard() -> None:
    """Raise :class:`ImportError` with the install hint when ``tensorboard`` is missing."""
    if not tensorboard_available():
        raise ImportError(INSTALL_HINT)


class TensorBoardLogger:
    """Writes each epoch's numeric record entries as scalars (``train/...``, ``val/...``, ``run/...``)
    and the validation examples as one image grid per epoch (image | truth | prediction, colour-coded,
    pixels equal to ``ignore_index`` shown as class 0).

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter`` (or anything with ``add_scalar``,
            ``add_images``, ``flush`` and ``close``).
        num_images: how many validation images the engine should hand over (0: scalars only).
        ignore_index: the run's ignore value, the same one the metrics skip.
    """

    def __init__(self, writer, num_images: int = 4, ignore_index: int = IGNORE_INDEX):
        self.writer = writer
        self.num_images = num_images
        self.ignore_index = ignore_index

    @classmethod
    def create(cls, log_dir, num_images: int = 4, ignore_index: int = IGNORE_INDEX) -> TensorBoardLogger:
        """A logger writing to ``log_dir``.

        Raises:
            ImportError: the ``tensorboard`` package is not installed.
        """
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        return cls(SummaryWriter(log_dir=str(log_dir)), num_images=num_images, ignore_index=ignore_index)

    def log_epoch(self, record: dict, examples: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> None:
        """Log one epoch.

        Args:
            record: the history record (``record["epoch"]`` is the step); numeric entries become scalars.
            examples: ``(images (n, 3, H, W) float, target (n, H, W) int64, pred (n, H, W) int64)``
                from the validation pass, or ``None`` (no validation, or a task that makes none).
        """
        epoch = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                group = "train" if key.startswith("train_") else "val" if key.startswith("val_") else "run"
                self.writer.add_scalar(f"{group}/{key}", value, epoch)
        if examples is not None and self.num_images:
            self.writer.add_images("val/image_truth_prediction", self.prediction_grid(*examples), epoch)
        self.writer.flush()

    def prediction_grid(self, images: torch.Tensor, target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """``(n, 3, H, 3W)`` float in [0, 1]: each image (min-max scaled) | its truth | the prediction,
        class ids shown as grey levels ``id / max id``."""
        images, target, pred = images[: self.num_images], target[: self.num_images], pred[: self.num_images]
        images, target, pred = images.detach().float().cpu(), target.cpu(), pred.cpu()
        lo, hi = images.amin(dim=(1, 2, 3), keepdim=True), images.amax(dim=(1, 2, 3), keepdim=True)
        shown = (images - lo) / (hi - lo).clamp(min=1e-8)
        valid = target != self.ignore_index
        top = max(int(pred.max()), int(target[valid].max()) if valid.any() else 1, 1)

        def colour(ids: torch.Tensor) -> torch.Tensor:
            return (ids.clamp(max=top).float() / top).unsqueeze(1).expand(-1, 3, -1, -1)

        truth = torch.where(valid, target, 0)
        return torch.cat([shown[:, :3], colour(truth), colour(pred)], dim=3)

    def close(self) -> None:
        self.writer.close()
