"""The training engine: ``fit``, ``evaluate``, ``predict``, checkpoints and training history.

    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from segcourse import seed_everything
    >>> from segcourse.train import evaluate, fit, predict
    >>> _ = seed_everything(0)
    >>> images = torch.rand(8, 3, 16, 16)                      # 8 tiny images; class 1 where they are bright
    >>> loader = DataLoader(TensorDataset(images, (images.mean(dim=1) > 0.5).long()), batch_size=4)
    >>> model = nn.Conv2d(3, 2, kernel_size=3, padding=1)      # any model returning (N, C, H, W) logits
    >>> history = fit(model, loader, loader, loss_fn=nn.CrossEntropyLoss(), epochs=2, device="cpu", verbose=False,
    ...               progress=False)
    >>> len(history.records), 0 <= evaluate(model, loader, device="cpu")["miou"] <= 1
    (2, True)
    >>> predict(model, images[:2], device="cpu").shape
    torch.Size([2, 16, 16])

Modules:

* :mod:`~segcourse.train.fit` -- ``fit`` and its options, ``FitConfig`` (the loop to read first)
* :mod:`~segcourse.train.epoch` -- one pass: ``train_one_epoch`` / ``evaluate`` / ``predict``
* :mod:`~segcourse.train.tasks` -- the ``Task`` interface and ``SegmentationTask`` (what fit runs on a batch)
* :mod:`~segcourse.train.optim` -- the optimiser and learning-rate schedule ``fit`` builds by name
* :mod:`~segcourse.train.progress` -- the progress bar of every loop
* :mod:`~segcourse.train.run_log` -- TensorBoard logging for ``fit(log_dir=...)``
* :mod:`~segcourse.train.history` -- :class:`History` and :func:`plot_history`
* :mod:`~segcourse.train.checkpoint` -- safetensors + JSON checkpoints (never pickles)
* :mod:`~segcourse.train.amp` -- mixed precision and channels-last settings
* :mod:`~segcourse.train.distributed` -- DDP under ``torchrun``
* :mod:`~segcourse.train.detection` -- training detectors that return a loss dict (Mask R-CNN)
* :mod:`~segcourse.train.registry` -- model builders by name (``python -m segcourse train``)

``logits_to_pred`` (from :mod:`segcourse.metrics`) and ``model_logits`` (from
:mod:`segcourse.models.outputs`) are re-exported here for convenience.
"""

from ..metrics import logits_to_pred
from ..models.outputs import model_logits
from .amp import Precision, resolve_precision
from .checkpoint import LoadedCheckpoint, load_checkpoint, load_training_state, save_checkpoint, save_training_state
from .detection import DetectionTask, detection_collate
from .epoch import evaluate, predict, train_one_epoch
from .fit import FitConfig, fit, fit_config
from .history import History, plot_history
from .optim import build_optimizer, build_scheduler
from .registry import build_model, register_model
from .tasks import SegmentationTask, Task, summarize_confusion

__all__ = [
    "DetectionTask", "FitConfig", "History", "LoadedCheckpoint", "Precision", "SegmentationTask", "Task", "build_model",
    "build_optimizer", "build_scheduler", "detection_collate", "evaluate", "fit", "fit_config", "load_checkpoint",
    "load_training_state", "logits_to_pred", "model_logits", "plot_history", "predict", "register_model",
    "resolve_precision", "save_checkpoint", "save_training_state", "summarize_confusion", "train_one_epoch",
]
