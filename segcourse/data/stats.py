"""Class statistics of a segmentation dataset: how many pixels, in how many images, how imbalanced.

Looking at these numbers before training tells you which loss and metric make sense: a class
with 3 % of the pixels can be ignored completely by a model that still reaches 97 % pixel
accuracy. Two views matter and disagree: the *pixel* share of a class, and the share of *images*
it appears in (buildings cover 3 % of the pixels of an aerial tile but appear in nearly every tile).

Convention: pixels equal to ``ignore_index`` are not counted anywhere (neither in a class nor in
the total), as in torchvision's ``ConfusionMatrix`` and ``torch.nn.CrossEntropyLoss(ignore_index=...)``.

References:
    Eigen & Fergus, "Predicting Depth, Surface Normals and Semantic Labels with a Common Multi-Scale
    Convolutional Architecture" (median frequency balancing), ICCV 2015, https://arxiv.org/abs/1411.4734 .
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .._checks import check_int
from ..constants import IGNORE_INDEX

__all__ = ["ClassStats", "class_statistics", "iter_masks"]


@dataclass(frozen=True)
class ClassStats:
    """Per-class counts over a set of masks (all arrays ``(C,)``).

    Attributes:
        pixels: ``int64`` number of pixels of each class.
        images: ``int64`` number of masks in which the class occurs at least once.
        image_pixels: ``int64`` labelled (not ignored) pixels of the masks in which the class occurs
            (what median frequency balancing divides by).
        num_images: number of masks counted.
        ignored: number of ``ignore_index`` pixels (not in ``pixels``).
        class_names: names for printing (``class 0`` ... when not given).
    """

    pixels: np.ndarray
    images: np.ndarray
    image_pixels: np.ndarray
    num_images: int
    ignored: int
    class_names: tuple[str, ...]

    @property
    def fraction(self) -> np.ndarray:
        """``(C,) float64`` share of the labelled pixels; sums to 1 (all zeros if nothing is labelled)."""
        total = self.pixels.sum()
        return self.pixels / total if total else np.zeros(len(self.pixels))

    @property
    def image_fraction(self) -> np.ndarray:
        """``(C,) float64`` share of the masks that contain each class."""
        return self.images / max(self.num_images, 1)

    @property
    def imbalance(self) -> float:
        """Pixels of the most frequent class / pixels of the rarest class that occurs (``inf`` if one is absent)."""
        if (self.pixels == 0).any():
            return float("inf")
        return float(self.pixels.max() / self.pixels.min())

    def inverse_frequency_weights(self) -> np.ndarray:
        """``(C,) float64`` weights ``w_c = n / (K * n_c)``: ``n`` labelled pixels, ``n_c`` of class ``c``, ``K`` classes
        that occur. A balanced set gives all ones (scikit-learn's "balanced" heuristic); an absent class gets 0."""
        total = self.pixels.sum()
        present = int((self.pixels > 0).sum())
        return np.where(self.pixels > 0, total / (max(present, 1) * np.maximum(self.pixels, 1)), 0.0)

    def median_frequency_weights(self) -> np.ndarray:
        """``(C,) float64`` Eigen & Fergus' weights ``median(freq) / freq_c``, ``freq_c = pixels_c / image_pixels_c``.

        A class that is rare *inside* the images where it occurs is boosted; the median is over the classes
        that occur, and an absent class gets weight 0.

        Reference:
            https://arxiv.org/abs/1411.4734 (section 4.1), also used by SegNet (https://arxiv.org/abs/1511.00561).
        """
        present = self.pixels > 0
        freq = np.zeros(len(self.pixels), dtype=np.float64)
        freq[present] = self.pixels[present] / self.image_pixels[present]
        median = np.median(freq[present]) if present.any() else 0.0
        return np.where(present, median / np.where(present, freq, 1.0), 0.0)

    def table(self) -> str:
        """A small text table: class, pixels, % of pixels, % of images."""
        width = max(8, *(len(n) for n in self.class_names))
        lines = [f"{'class':<{width}} {'pixels':>10} {'% pixels':>9} {'% images':>9}"]
        for name, n, f, fi in zip(self.class_names, self.pixels, self.fraction, self.image_fraction):
            lines.append(f"{name:<{width}} {int(n):>10d} {100 * f:>8.2f}% {100 * fi:>8.1f}%")
        lines.append(f"{'ignored':<{width}} {self.ignored:>10d}   imbalance (max/min pixels): {self.imbalance:.1f}")
        return "\n".join(lines)


def iter_masks(source) -> Iterator[np.ndarray]:
    """Yield ``(H, W)`` masks from an array or tensor ``(H, W)`` / ``(N, H, W)``, a list of masks, a Dataset
    returning ``(image, mask)`` (or a dict with a ``"mask"``), or a DataLoader returning such batches."""
    if hasattr(source, "detach"):  # a torch tensor
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        if source.ndim == 2:
            yield source
            return
        if source.ndim < 2:
            raise ValueError(f"masks must be (H, W) or (N, H, W), got an array of shape {source.shape}")
        yield from source.reshape(-1, *source.shape[-2:])
        return
    try:
        iterator = iter(source)
    except TypeError:
        raise TypeError(f"expected masks as an array/tensor (N, H, W), a dataset or a DataLoader, "
                        f"got {type(source).__name__}") from None
    for item in iterator:
        if isinstance(item, (tuple, list)):
            if len(item) < 2:
                raise ValueError("a dataset item must be (image, mask): got a sequence of length < 2")
            item = item[1]
        elif isinstance(item, dict):
            if "mask" not in item:
                raise ValueError(f"a dataset item given as a dict needs a 'mask' key, got keys {sorted(item)}")
            item = item["mask"]
        yield from iter_masks(item)


def class_statistics(masks, num_classes: int, *, ignore_index: int = IGNORE_INDEX,
                     class_names: Sequence[str] | None = None) -> ClassStats:
    """Count the pixels and images of each class: the one count behind the lesson 02 table and the class
    weights of lesson 06 (:func:`segcourse.losses.inverse_frequency_weights` and ``median_frequency_weights``).

    Args:
        masks: integer masks as :func:`iter_masks` takes them: an ``(N, H, W)`` / ``(H, W)`` array or tensor,
            a list of ``(H, W)`` masks (sizes may differ), a Dataset or a DataLoader of ``(image, mask)``.
        num_classes: C; labels must be in ``[0, C)`` or ``ignore_index``.
        ignore_index: label that is not counted.
        class_names: C names for :meth:`ClassStats.table`.

    Returns:
        A :class:`ClassStats`.

    Raises:
        ValueError: a label outside ``[0, C)`` that is not ``ignore_index`` (the message gives the
            mask's position), no masks, or ``class_names`` of the wrong length.
        TypeError: a floating-point mask (class ids are integers; a mask divided by 255 is a bug).
    """
    num_classes = check_int(num_classes, "num_classes")
    if class_names is None:
        class_names = tuple(f"class {c}" for c in range(num_classes))
    if len(class_names) != num_classes:
        raise ValueError(f"class_names has {len(class_names)} names but num_classes={num_classes}")
    pixels = np.zeros(num_classes, np.int64)
    images = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    ignored = 0
    n = 0
    for k, mask in enumerate(iter_masks(masks)):
        mask = np.asarray(mask)
        if not np.issubdtype(mask.dtype, np.integer):
            raise TypeError(f"mask #{k} has dtype {mask.dtype}; expected integer class ids "
                            f"(was it normalised or divided by 255?)")
        keep = mask != ignore_index
        labels = mask[keep].astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            bad = np.unique(labels[(labels < 0) | (labels >= num_classes)])
            raise ValueError(f"mask #{k} has labels {bad[:8].tolist()} outside [0, {num_classes}) that are not "
                             f"ignore_index={ignore_index}")
        counts = np.bincount(labels, minlength=num_classes)
        pixels += counts
        images += counts > 0
        image_pixels[counts > 0] += labels.size
        ignored += int((~keep).sum())
        n += 1
    if n == 0:
        raise ValueError("no masks given")
    return ClassStats(pixels=pixels, images=images, image_pixels=image_pixels, num_images=n, ignored=ignored,
                      class_names=tuple(class_names))
