"""Segmentation losses: pure functions ``name(logits, target, ...)`` and thin ``nn.Module`` wrappers.

Glossary: ``logits`` (N, C, H, W) float raw scores; ``target`` (N, H, W) int64 class ids with
:data:`segcourse.constants.IGNORE_INDEX` (255) for pixels that count nowhere. Binary variants
take one sigmoid channel, ``logits`` (N, 1, H, W), and a target (N, H, W) or (N, 1, H, W) of 0/1.
Every loss honours ``ignore_index``.

**Ignore policy.** One rule for every loss here: a batch in which every pixel is ignored (a crop
that fell entirely on void, a fully unlabelled image) gives a loss of exactly 0 with a zero
gradient, so a training step on it changes nothing, instead of NaN (``0/0``) that would poison the
weights. :func:`cross_entropy` departs here from :func:`torch.nn.functional.cross_entropy`, which
returns NaN; every other loss gets 0 from its masked mean or its empty class sums.
``tests/losses/test_gradients_and_properties.py`` checks it for every loss of :func:`get_loss` and
every binary loss.

| family | functions | module |
| --- | --- | --- |
| pixel-wise | :func:`cross_entropy` (class weights), :func:`binary_cross_entropy`, :func:`ohem_cross_entropy` | ``pixelwise`` |
| class weights | :func:`inverse_frequency_weights`, :func:`median_frequency_weights` (counts: :func:`segcourse.data.stats.class_statistics`) | ``pixelwise`` |
| region overlap | :func:`dice_loss`, :func:`binary_dice_loss`, :func:`tversky_loss`, :func:`binary_tversky_loss`, :func:`ce_dice_loss` | ``overlap`` |
| focal | :func:`focal_loss` (softmax), :func:`binary_focal_loss` (sigmoid) | ``focal`` |
| IoU surrogate | :func:`lovasz_softmax_loss`, :func:`lovasz_hinge_loss` | ``lovasz`` |
| boundary | :func:`boundary_loss`, :func:`signed_distance_maps` | ``boundary`` |

Each hand-written loss names in its docstring the reference implementation (segmentation_models_pytorch,
MONAI, torchvision or PyTorch) and the settings under which it is equal; ``tests/losses`` checks
each equality to 1e-5 on seeded random inputs, plus gradients (``torch.autograd.gradcheck``).
"""

from .boundary import boundary_loss, signed_distance_map, signed_distance_maps
from .focal import binary_focal_loss, focal_loss, focal_weight
from .lovasz import lovasz_grad, lovasz_hinge_loss, lovasz_softmax_loss
from .modules import (
    MULTICLASS_LOSSES,
    BinaryCrossEntropyLoss,
    BinaryDiceLoss,
    BinaryFocalLoss,
    BinaryTverskyLoss,
    BoundaryLoss,
    CEDiceLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    LovaszHingeLoss,
    LovaszSoftmaxLoss,
    OHEMCrossEntropyLoss,
    TverskyLoss,
    get_loss,
)
from .overlap import binary_dice_loss, binary_tversky_loss, ce_dice_loss, dice_loss, overlap_counts, tversky_loss
from .pixelwise import (
    binary_cross_entropy,
    cross_entropy,
    inverse_frequency_weights,
    median_frequency_weights,
    ohem_cross_entropy,
)

__all__ = [
    "MULTICLASS_LOSSES", "BinaryCrossEntropyLoss", "BinaryDiceLoss", "BinaryFocalLoss", "BinaryTverskyLoss",
    "BoundaryLoss", "CEDiceLoss", "CrossEntropyLoss", "DiceLoss", "FocalLoss", "LovaszHingeLoss",
    "LovaszSoftmaxLoss", "OHEMCrossEntropyLoss", "TverskyLoss",
    "binary_cross_entropy", "binary_dice_loss", "binary_focal_loss", "binary_tversky_loss", "boundary_loss",
    "ce_dice_loss", "cross_entropy", "dice_loss", "focal_loss", "focal_weight",
    "get_loss", "inverse_frequency_weights", "lovasz_grad", "lovasz_hinge_loss", "lovasz_softmax_loss",
    "median_frequency_weights", "ohem_cross_entropy", "overlap_counts", "signed_distance_map",
    "signed_distance_maps", "tversky_loss",
]
