"""Optional TensorBoard logging: scalars per epoch and a few validation predictions.

TensorBoard is not a course requirement. When the ``tensorboard`` package is missing,
:meth:`TensorBoardLogger.create` prints one line saying logging is skipped and returns
``None``; training goes on unchanged. Install it with ``pip install tensorboard`` and open
the logs with ``tensorboard --logdir LOG_DIR``.
"""

from __future__ import annotations

import torch

from ..constants import IGNORE_INDEX
from .amp import autocast, to_device


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be used (it needs the ``tensorboard`` package)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoardLogger:
    """Writes each epoch's numeric record entries as scalars and, every epoch, the predictions
    for the first ``num_images`` validation images (image | truth | prediction, colour-coded)."""

    def __init__(self, writer, num_images: int = 4):
        self.writer = writer
        self.num_images = num_images

    @classmethod
    def create(cls, log_dir, verbose: bool = True, num_images: int = 4) -> "TensorBoardLogger | None":
        """A logger writing to ``log_dir``, or ``None`` (with a message) when tensorboard is not installed."""
        if not tensorboard_available():
            if verbose:
                print("TensorBoard logging skipped: the 'tensorboard' package is not installed "
                      "(pip install tensorboard to enable it); training continues without it")
            return None
        from torch.utils.tensorboard import SummaryWriter

        return cls(SummaryWriter(log_dir=str(log_dir)), num_images=num_images)

    def log_epoch(self, record: dict, model, val_loader, *, device, precision) -> None:
        epoch = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                group = "train" if key.startswith("train_") else "val" if key.startswith("val_") else "run"
                self.writer.add_scalar(f"{group}/{key}", value, epoch)
        if val_loader is not None and self.num_images:
            self._log_predictions(model, val_loader, epoch, device, precision)
        self.writer.flush()

    @torch.no_grad()
    def _log_predictions(self, model, loader, epoch, device, precision) -> None:
        from .engine import logits_to_pred, model_logits

        batch = next(iter(loader), None)
        if not isinstance(batch, (tuple, list)) or not isinstance(batch[0], torch.Tensor):
            return
        images, target = batch[0][: self.num_images], batch[1][: self.num_images]
        was_training = model.training
        model.eval()
        with autocast(precision, device):
            pred = logits_to_pred(model_logits(model(to_device(images, device, precision))).float()).cpu()
        model.train(was_training)
        lo, hi = images.amin(dim=(1, 2, 3), keepdim=True), images.amax(dim=(1, 2, 3), keepdim=True)
        shown = ((images - lo) / (hi - lo).clamp(min=1e-8)).float()
        valid = target != IGNORE_INDEX
        top = max(int(pred.max()), int(target[valid].max()) if valid.any() else 1, 1)
        colour = lambda m: (m.clamp(max=top).float() / top).unsqueeze(1).expand(-1, 3, -1, -1)  # noqa: E731
        truth = torch.where(valid, target, 0)
        grid = torch.cat([shown[:, :3], colour(truth), colour(pred)], dim=3)  # (n, 3, H, 3W)
        self.writer.add_images("val/image_truth_prediction", grid, epoch)

    def close(self) -> None:
        self.writer.close()
