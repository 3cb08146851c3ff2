"""The training engine: ``fit``, ``evaluate``, ``predict``, checkpoints and training history.

    >>> from segcourse.train import fit, evaluate, predict            # doctest: +SKIP
    >>> history = fit(model, train_loader, val_loader, loss_fn=loss, epochs=5)
    >>> history.best["val_miou"], evaluate(model, val_loader, num_classes=4)["miou"]

Modules:

* :mod:`~segcourse.train.engine` -- ``fit`` / ``train_one_epoch`` / ``evaluate`` / ``predict``
* :mod:`~segcourse.train.history` -- :class:`History` and :func:`plot_history`
* :mod:`~segcourse.train.checkpoint` -- safetensors + JSON checkpoints (never pickles)
* :mod:`~segcourse.train.amp` -- mixed precision and channels-last settings
* :mod:`~segcourse.train.distributed` -- DDP under ``torchrun``
* :mod:`~segcourse.train.detection` -- training detectors that return a loss dict (Mask R-CNN)
* :mod:`~segcourse.train.registry` -- model builders by name (``python -m segcourse train``)
"""

from .amp import Precision, resolve_precision
from .checkpoint import LoadedCheckpoint, load_checkpoint, load_training_state, save_checkpoint, save_training_state
from .detection import DetectionTask, detection_collate
from .engine import (SegmentationTask, evaluate, fit, logits_to_pred, model_logits, predict, summarize_confusion,
                     train_one_epoch)
from .history import History, plot_history
from .registry import build_model, register_model

__all__ = [
    "DetectionTask", "History", "LoadedCheckpoint", "Precision", "SegmentationTask", "build_model",
    "detection_collate", "evaluate", "fit", "load_checkpoint", "load_training_state", "logits_to_pred",
    "model_logits", "plot_history", "predict", "register_model",
    "resolve_precision", "save_checkpoint", "save_training_state", "summarize_confusion", "train_one_epoch",
]
