"""``nn.Module`` wrappers of the functional losses, for code that expects ``loss_fn(logits, target)``.

Each class is a thin shell: its keyword arguments are those of the function it wraps (checked
when the module is built, so a typo fails at once), class-weight tensors are registered as
buffers (so ``.to(device)`` moves them), and ``forward`` calls the function.

    >>> from segcourse.losses import DiceLoss
    >>> import torch
    >>> loss_fn = DiceLoss(smooth=1e-5, reduce_batch=False, absent="smooth")
    >>> logits, target = torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)
    >>> loss_fn(logits, target).shape  # a scalar: the mean of one Dice loss per image and class
    torch.Size([])
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from . import boundary, focal, lovasz, overlap, pixelwise

_TENSOR_ARGS = ("weight", "class_weights")


class _FunctionalLoss(nn.Module):
    """Base: stores the keyword arguments of ``fn`` and calls ``fn(logits, target, **kwargs)``."""

    fn = None  # set by subclasses (a staticmethod)

    def __init__(self, **kwargs):
        super().__init__()
        allowed = list(inspect.signature(type(self).fn).parameters)[2:]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown argument(s) {unknown}; it accepts {allowed}")
        self._options = {k: v for k, v in kwargs.items() if k not in _TENSOR_ARGS}
        self._tensor_names = []
        for name in _TENSOR_ARGS:
            if kwargs.get(name) is not None:
                self.register_buffer(name, torch.as_tensor(kwargs[name], dtype=torch.float32).clone())
                self._tensor_names.append(name)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, **extra) -> torch.Tensor:
        options = dict(self._options)
        options.update({name: getattr(self, name) for name in self._tensor_names})
        options.update(extra)
        return type(self).fn(logits, target, **options)

    def extra_repr(self) -> str:
        shown = dict(self._options)
        shown.update({name: [round(float(x), 4) for x in getattr(self, name)] for name in self._tensor_names})
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def _wrap(name: str, function, doc_extra: str = "") -> type:
    cls = type(name, (_FunctionalLoss,), {
        "fn": staticmethod(function),
        "__doc__": f"Module form of :func:`{function.__module__}.{function.__name__}`; "
                   f"keyword arguments as there.{doc_extra}",
        "__module__": __name__,
    })
    return cls


CrossEntropyLoss = _wrap("CrossEntropyLoss", pixelwise.cross_entropy)
BinaryCrossEntropyLoss = _wrap("BinaryCrossEntropyLoss", pixelwise.binary_cross_entropy)
OHEMCrossEntropyLoss = _wrap("OHEMCrossEntropyLoss", pixelwise.ohem_cross_entropy)
DiceLoss = _wrap("DiceLoss", overlap.dice_loss)
BinaryDiceLoss = _wrap("BinaryDiceLoss", overlap.binary_dice_loss)
TverskyLoss = _wrap("TverskyLoss", overlap.tversky_loss)
BinaryTverskyLoss = _wrap("BinaryTverskyLoss", overlap.binary_tversky_loss)
CEDiceLoss = _wrap("CEDiceLoss", overlap.ce_dice_loss)
FocalLoss = _wrap("FocalLoss", focal.focal_loss)
BinaryFocalLoss = _wrap("BinaryFocalLoss", focal.binary_focal_loss)
LovaszSoftmaxLoss = _wrap("LovaszSoftmaxLoss", lovasz.lovasz_softmax_loss)
LovaszHingeLoss = _wrap("LovaszHingeLoss", lovasz.lovasz_hinge_loss)
BoundaryLoss = _wrap("BoundaryLoss", boundary.boundary_loss,
                     " ``forward(logits, target, dist_maps=None)`` accepts precomputed distance maps.")

#: Short names of the multiclass losses (logits (N, C, H, W), target (N, H, W)), for experiments that loop over them.
MULTICLASS_LOSSES: dict[str, type] = {
    "ce": CrossEntropyLoss,
    "ohem": OHEMCrossEntropyLoss,
    "dice": DiceLoss,
    "tversky": TverskyLoss,
    "focal": FocalLoss,
    "lovasz": LovaszSoftmaxLoss,
    "boundary": BoundaryLoss,
    "ce_dice": CEDiceLoss,
}


def get_loss(name: str, **kwargs) -> nn.Module:
    """Build a multiclass loss module by short name: ``get_loss("focal", gamma=2.0)``.

    Args:
        name: one of ``ce, ohem, dice, tversky, focal, lovasz, boundary, ce_dice``.
        kwargs: keyword arguments of the underlying function (e.g. ``weight=`` for ``"ce"``).

    Raises:
        ValueError: unknown name. TypeError: an argument the loss does not take.
    """
    try:
        cls = MULTICLASS_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(MULTICLASS_LOSSES)}") from None
    return cls(**kwargs)
