"""``nn.Module`` forms of the functional losses, for code that expects ``loss_fn(logits, target)``.

Each class takes the keyword arguments of the function it wraps (same names, same defaults, so a typo
fails when the module is built), keeps class-weight tensors as buffers (``.to(device)`` moves them)
and calls the function in ``forward``.

Shapes, for every multi-class loss: ``logits`` ``(N, C, H, W)`` float (raw scores), ``target`` ``(N, H, W)``
int64 class ids in ``[0, C)`` or ``ignore_index``; for every binary loss: ``logits`` ``(N, 1, H, W)`` float,
``target`` ``(N, H, W)`` or ``(N, 1, H, W)`` holding 0, 1 or ``ignore_index``. ``forward`` returns a scalar
(``()`` float) unless ``reduction="none"``.

    >>> from segcourse.losses import DiceLoss
    >>> import torch
    >>> loss_fn = DiceLoss(smooth=1e-5, reduce_batch=False, absent="smooth")
    >>> logits, target = torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)
    >>> loss_fn(logits, target).shape  # a scalar: the mean of one Dice loss per image and class
    torch.Size([])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..constants import IGNORE_INDEX
from .boundary import boundary_loss
from .focal import binary_focal_loss, focal_loss
from .lovasz import lovasz_hinge_loss, lovasz_softmax_loss
from .overlap import binary_dice_loss, binary_tversky_loss, ce_dice_loss, dice_loss, tversky_loss
from .pixelwise import binary_cross_entropy, cross_entropy, ohem_cross_entropy

Weights = Sequence[float] | torch.Tensor | None


def _weights(values: Weights) -> torch.Tensor | None:
    """Class weights as a float32 tensor of its own (a buffer), or ``None``."""
    return None if values is None else torch.as_tensor(values, dtype=torch.float32).clone()


class _Loss(nn.Module):
    """Shows the options a loss was built with when the module is printed."""

    _options: tuple[str, ...] = ()

    def extra_repr(self) -> str:
        shown = []
        for name in self._options:
            value = getattr(self, name)
            if isinstance(value, torch.Tensor):
                value = [round(float(x), 4) for x in value]
            shown.append(f"{name}={value!r}")
        return ", ".join(shown)


class CrossEntropyLoss(_Loss):
    """Module form of :func:`~segcourse.losses.pixelwise.cross_entropy`: softmax cross-entropy per pixel.

    Args:
        weight: ``(C,)`` class weights (a buffer), or ``None``.
        ignore_index: target value that contributes nothing.
        label_smoothing: in ``[0, 1)``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(N, H, W)``, zero at ignored pixels).
    """

    _options = ("weight", "ignore_index", "label_smoothing", "reduction")

    def __init__(self, *, weight: Weights = None, ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("weight", _weights(weight))
        self.ignore_index, self.label_smoothing, self.reduction = ignore_index, label_smoothing, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index,
                             label_smoothing=self.label_smoothing, reduction=self.reduction)


class BinaryCrossEntropyLoss(_Loss):
    """Module form of :func:`~segcourse.losses.pixelwise.binary_cross_entropy`: BCE of one sigmoid channel.

    Args:
        pos_weight: multiplies the foreground term (``> 1`` raises recall), or ``None``.
        ignore_index: target value that contributes nothing (the target may hold soft labels in ``[0, 1]``).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    _options = ("pos_weight", "ignore_index", "reduction")

    def __init__(self, *, pos_weight: float | None = None, ignore_index: int = IGNORE_INDEX,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.pos_weight, self.ignore_index, self.reduction = pos_weight, ignore_index, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_cross_entropy(logits, target, pos_weight=self.pos_weight, ignore_index=self.ignore_index,
                                    reduction=self.reduction)


class OHEMCrossEntropyLoss(_Loss):
    """Module form of :func:`~segcourse.losses.pixelwise.ohem_cross_entropy`: cross-entropy of the hardest pixels.

    Args:
        keep_ratio: fraction of the non-ignored pixels kept (the highest losses).
        min_kept: keep at least this many pixels.
        weight: ``(C,)`` class weights (a buffer), or ``None``.
        ignore_index: target value that contributes nothing.
    """

    _options = ("keep_ratio", "min_kept", "weight", "ignore_index")

    def __init__(self, *, keep_ratio: float = 0.25, min_kept: int = 0, weight: Weights = None,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.keep_ratio, self.min_kept, self.ignore_index = keep_ratio, min_kept, ignore_index
        self.register_buffer("weight", _weights(weight))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ohem_cross_entropy(logits, target, keep_ratio=self.keep_ratio, min_kept=self.min_kept,
                                  weight=self.weight, ignore_index=self.ignore_index)


class DiceLoss(_Loss):
    """Module form of :func:`~segcourse.losses.overlap.dice_loss`: multi-class soft Dice, averaged over classes.

    Args:
        smooth: added to numerator and denominator.
        eps: floor of the denominator.
        reduce_batch: pool the counts over the batch (smp) or score each image (MONAI).
        absent: ``"zero"`` or ``"smooth"``, the policy for a class with no target pixels.
        include_background: score class 0 too.
        class_weights: ``(C,)`` weights of the per-class losses (a buffer), or ``None``.
        ignore_index: target value that contributes nothing.
    """

    _options = ("smooth", "eps", "reduce_batch", "absent", "include_background", "class_weights", "ignore_index")

    def __init__(self, *, smooth: float = 0.0, eps: float = 1e-7, reduce_batch: bool = True, absent: str = "zero",
                 include_background: bool = True, class_weights: Weights = None,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.smooth, self.eps, self.reduce_batch, self.absent = smooth, eps, reduce_batch, absent
        self.include_background, self.ignore_index = include_background, ignore_index
        self.register_buffer("class_weights", _weights(class_weights))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return dice_loss(logits, target, smooth=self.smooth, eps=self.eps, reduce_batch=self.reduce_batch,
                         absent=self.absent, include_background=self.include_background,
                         class_weights=self.class_weights, ignore_index=self.ignore_index)


class BinaryDiceLoss(_Loss):
    """Module form of :func:`~segcourse.losses.overlap.binary_dice_loss`: soft Dice of one sigmoid channel.

    Args: ``smooth``, ``eps``, ``reduce_batch``, ``absent``, ``ignore_index`` as :class:`DiceLoss`.
    """

    _options = ("smooth", "eps", "reduce_batch", "absent", "ignore_index")

    def __init__(self, *, smooth: float = 0.0, eps: float = 1e-7, reduce_batch: bool = True, absent: str = "zero",
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.smooth, self.eps, self.reduce_batch, self.absent = smooth, eps, reduce_batch, absent
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_dice_loss(logits, target, smooth=self.smooth, eps=self.eps, reduce_batch=self.reduce_batch,
                                absent=self.absent, ignore_index=self.ignore_index)


class TverskyLoss(_Loss):
    """Module form of :func:`~segcourse.losses.overlap.tversky_loss`: ``1 - TP / (TP + alpha FP + beta FN)``.

    Args:
        alpha: weight of the false positives; beta: of the false negatives (0.5, 0.5 is Dice).
        smooth, eps, reduce_batch, absent, include_background, class_weights, ignore_index: as :class:`DiceLoss`.
    """

    _options = ("alpha", "beta", "smooth", "eps", "reduce_batch", "absent", "include_background", "class_weights",
                "ignore_index")

    def __init__(self, *, alpha: float = 0.5, beta: float = 0.5, smooth: float = 0.0, eps: float = 1e-7,
                 reduce_batch: bool = True, absent: str = "zero", include_background: bool = True,
                 class_weights: Weights = None, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.alpha, self.beta, self.smooth, self.eps = alpha, beta, smooth, eps
        self.reduce_batch, self.absent, self.include_background = reduce_batch, absent, include_background
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", _weights(class_weights))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return tversky_loss(logits, target, alpha=self.alpha, beta=self.beta, smooth=self.smooth, eps=self.eps,
                            reduce_batch=self.reduce_batch, absent=self.absent,
                            include_background=self.include_background, class_weights=self.class_weights,
                            ignore_index=self.ignore_index)


class BinaryTverskyLoss(_Loss):
    """Module form of :func:`~segcourse.losses.overlap.binary_tversky_loss`: Tversky of one sigmoid channel.

    Args: ``alpha``, ``beta``, ``smooth``, ``eps``, ``reduce_batch``, ``absent``, ``ignore_index`` as
    :class:`TverskyLoss`.
    """

    _options = ("alpha", "beta", "smooth", "eps", "reduce_batch", "absent", "ignore_index")

    def __init__(self, *, alpha: float = 0.5, beta: float = 0.5, smooth: float = 0.0, eps: float = 1e-7,
                 reduce_batch: bool = True, absent: str = "zero", ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.alpha, self.beta, self.smooth, self.eps = alpha, beta, smooth, eps
        self.reduce_batch, self.absent, self.ignore_index = reduce_batch, absent, ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_tversky_loss(logits, target, alpha=self.alpha, beta=self.beta, smooth=self.smooth,
                                   eps=self.eps, reduce_batch=self.reduce_batch, absent=self.absent,
                                   ignore_index=self.ignore_index)


class CEDiceLoss(_Loss):
    """Module form of :func:`~segcourse.losses.overlap.ce_dice_loss`: ``ce_weight * CE + dice_weight * Dice``.

    Args:
        ce_weight, dice_weight: the two terms' weights.
        class_weights: ``(C,)`` class weights of the CE term (a buffer), or ``None``.
        smooth, reduce_batch, absent, include_background, ignore_index: the Dice term's, as :class:`DiceLoss`
            (defaults as MONAI's ``DiceCELoss``).
    """

    _options = ("ce_weight", "dice_weight", "class_weights", "smooth", "reduce_batch", "absent",
                "include_background", "ignore_index")

    def __init__(self, *, ce_weight: float = 1.0, dice_weight: float = 1.0, class_weights: Weights = None,
                 smooth: float = 1e-5, reduce_batch: bool = False, absent: str = "smooth",
                 include_background: bool = True, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.ce_weight, self.dice_weight, self.smooth = ce_weight, dice_weight, smooth
        self.reduce_batch, self.absent, self.include_background = reduce_batch, absent, include_background
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", _weights(class_weights))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ce_dice_loss(logits, target, ce_weight=self.ce_weight, dice_weight=self.dice_weight,
                            class_weights=self.class_weights, smooth=self.smooth, reduce_batch=self.reduce_batch,
                            absent=self.absent, include_background=self.include_background,
                            ignore_index=self.ignore_index)


class FocalLoss(_Loss):
    """Module form of :func:`~segcourse.losses.focal.focal_loss`: ``-alpha_t (1 - p_t)^gamma log p_t`` per pixel.

    Args:
        gamma: focusing exponent (0 is cross-entropy).
        alpha: ``None``, a float in ``[0, 1]`` (class 0 gets ``1 - alpha``, the others ``alpha``), or ``(C,)``
            weights.
        ignore_index: target value that contributes nothing.
        reduction: ``"mean"`` (over the non-ignored pixels), ``"sum"`` or ``"none"``.
    """

    _options = ("gamma", "alpha", "ignore_index", "reduction")

    def __init__(self, *, gamma: float = 2.0, alpha: float | Sequence[float] | torch.Tensor | None = None,
                 ignore_index: int = IGNORE_INDEX, reduction: str = "mean") -> None:
        super().__init__()
        self.gamma, self.alpha, self.ignore_index, self.reduction = gamma, alpha, ignore_index, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, target, gamma=self.gamma, alpha=self.alpha, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BinaryFocalLoss(_Loss):
    """Module form of :func:`~segcourse.losses.focal.binary_focal_loss`: sigmoid focal loss of one channel.

    Args:
        gamma: focusing exponent; alpha: weight of the foreground (``1 - alpha`` of the background), or ``None``.
        ignore_index, reduction: as :class:`FocalLoss`.
    """

    _options = ("gamma", "alpha", "ignore_index", "reduction")

    def __init__(self, *, gamma: float = 2.0, alpha: float | None = None, ignore_index: int = IGNORE_INDEX,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.gamma, self.alpha, self.ignore_index, self.reduction = gamma, alpha, ignore_index, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return binary_focal_loss(logits, target, gamma=self.gamma, alpha=self.alpha, ignore_index=self.ignore_index,
                                 reduction=self.reduction)


class LovaszSoftmaxLoss(_Loss):
    """Module form of :func:`~segcourse.losses.lovasz.lovasz_softmax_loss`: a convex surrogate of the IoU loss.

    Args:
        classes: ``"present"`` (the classes in the target), ``"all"``, or a list of class ids.
        per_image: one loss per image, averaged (instead of one over the batch).
        ignore_index: target value that contributes nothing.
    """

    _options = ("classes", "per_image", "ignore_index")

    def __init__(self, *, classes: str | Sequence[int] = "present", per_image: bool = False,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.classes, self.per_image, self.ignore_index = classes, per_image, ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return lovasz_softmax_loss(logits, target, classes=self.classes, per_image=self.per_image,
                                   ignore_index=self.ignore_index)


class LovaszHingeLoss(_Loss):
    """Module form of :func:`~segcourse.losses.lovasz.lovasz_hinge_loss`: the binary Lovász hinge of one channel.

    Args: ``per_image``, ``ignore_index`` as :class:`LovaszSoftmaxLoss`.
    """

    _options = ("per_image", "ignore_index")

    def __init__(self, *, per_image: bool = False, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.per_image, self.ignore_index = per_image, ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return lovasz_hinge_loss(logits, target, per_image=self.per_image, ignore_index=self.ignore_index)


class BoundaryLoss(_Loss):
    """Module form of :func:`~segcourse.losses.boundary.boundary_loss`: softmax times signed distance to the boundary.

    Args:
        classes: the classes scored (default: all but the background), or ``None``.
        ignore_index: target value that contributes nothing.

    ``forward(logits, target, dist_maps=None)``: ``dist_maps`` ``(N, C, H, W)`` float, precomputed with
    :func:`~segcourse.losses.boundary.signed_distance_maps` (computed from ``target`` when ``None``).
    """

    _options = ("classes", "ignore_index")

    def __init__(self, *, classes: Sequence[int] | None = None, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.classes, self.ignore_index = classes, ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                dist_maps: torch.Tensor | None = None) -> torch.Tensor:
        return boundary_loss(logits, target, dist_maps=dist_maps, classes=self.classes,
                             ignore_index=self.ignore_index)


#: Short names of the multiclass losses (logits (N, C, H, W), target (N, H, W)), for experiments that loop over them.
MULTICLASS_LOSSES: dict[str, type[nn.Module]] = {
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
        kwargs: keyword arguments of the loss (e.g. ``weight=`` for ``"ce"``).

    Raises:
        ValueError: unknown name. TypeError: an argument the loss does not take.
    """
    try:
        cls = MULTICLASS_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(MULTICLASS_LOSSES)}") from None
    return cls(**kwargs)
