"""Augmentation pipelines for segmentation (albumentations), and an audit that catches broken ones.

Segmentation augmentation has one rule the classification recipes do not: **whatever moves the
image must move the mask the same way, and nothing may invent or rescale class ids**. In practice:

* geometric transforms (flip, crop, affine, elastic) get the image *and* the mask in one call,
  ``transform(image=image, mask=mask)``, so both see the same random parameters;
* the mask is resampled with **nearest neighbour** -- bilinear would average class 1 and class 3
  into a class 2 that was never drawn there (albumentations uses nearest for masks by default;
  the pipelines here say so explicitly). For *resizes* use ``cv2.INTER_NEAREST_EXACT``: OpenCV's
  legacy ``INTER_NEAREST`` resize takes the pixel under each output pixel's top-left corner, so
  the mask lands half an output pixel down and right of the bilinearly resized image. Warps
  (``Affine``, ``ElasticTransform``: ``cv2.warpAffine``/``cv2.remap``) round the very coordinate
  the image samples, so ``INTER_NEAREST`` is aligned there (:func:`mask_offset` measures both);
* photometric transforms (brightness, contrast, blur, noise) and :class:`albumentations.Normalize`
  touch only the image -- a mask divided by 255 turns class ids into fractions that
  ``long()`` rounds to 0;
* pixels a geometric transform brings in from outside the image (rotation corners, padding) are
  filled with :data:`~segcourse.constants.IGNORE_INDEX` in the mask, so the loss never learns
  that "outside" is background.

:func:`audit_transform` checks a pipeline against these rules on a given pair,
:func:`describe_transform` lists a pipeline one short line per step, and
:func:`paired_crop_flip` is the same idea written by hand in a dozen lines of NumPy.

References:
    Buslaev et al., "Albumentations: fast and flexible image augmentations", Information 2020,
    https://arxiv.org/abs/1809.06839 ; Simard, Steinkraus & Platt, "Best practices for
    convolutional neural networks applied to visual document analysis" (elastic deformation),
    ICDAR 2003 ; Ronneberger et al., "U-Net", https://arxiv.org/abs/1505.04597 (elastic deformations
    for few training images).
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no version check over the network on import

from collections.abc import Callable, Sequence

import numpy as np

from ..constants import IGNORE_INDEX

__all__ = ["LEVELS", "RESIZING", "audit_transform", "describe_transform", "eval_transform", "mask_offset", "paired_crop_flip",
           "train_transform"]

#: Strengths of :func:`train_transform`, weakest first.
LEVELS = ("none", "light", "medium", "strong")

#: albumentations transforms that resize with ``cv2.resize`` (their masks want ``cv2.INTER_NEAREST_EXACT``);
#: the warps (``Affine``, ``Rotate``, ``ElasticTransform``...) are aligned with ``cv2.INTER_NEAREST``.
RESIZING = ("Resize", "RandomResizedCrop", "RandomSizedCrop", "LongestMaxSize", "SmallestMaxSize", "RandomScale")


def _albumentations():
    """The ``albumentations`` module, refusing versions older than 2.0.

    The pipelines pass ``fill=``/``fill_mask=`` and ``GaussNoise(std_range=...)``, the 2.x names: 1.4
    only warns that it ignores them, and then pads masks with 0 (a real class) instead of ``ignore_index``.
    """
    import albumentations

    major = int(albumentations.__version__.split(".")[0])
    if major < 2:
        raise ImportError(f"segcourse's augmentation pipelines need albumentations >= 2.0 (fill_mask=, std_range=); "
                          f"found {albumentations.__version__}: install the pinned version (make lab)")
    return albumentations


def _size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, Sequence) or len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"size must be a positive int or an (height, width) pair of positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def train_transform(size: int | tuple[int, int] | None = None, *, level: str = "light",
                    ignore_index: int = IGNORE_INDEX, normalize: bool = False, photometric: bool = True,
                    seed: int | None = None):
    """A training pipeline that keeps image and mask in sync.

    Args:
        size: ``(H, W)`` (or one int) of the random crop; images smaller than that are padded first
            (image with 0, mask with ``ignore_index``). ``None``: keep the input size.
        level: ``"none"`` (crop only), ``"light"`` (flips, small shifts/scales, brightness/contrast),
            ``"medium"`` (+ rotations up to 30 degrees, shear, blur/noise), ``"strong"``
            (+ elastic deformation as in U-Net, stronger affine and colour changes).
        ignore_index: mask value for pixels the transform brings in from outside the image.
        normalize: append ImageNet mean/std normalisation of the *image* (for pretrained encoders);
            the mask is never normalised.
        photometric: include the brightness/contrast/blur/noise changes (image only); ``False``
            keeps just the geometric part.
        seed: seed of the pipeline's own random generator (albumentations >= 2 does not follow
            NumPy's global seed); the same seed gives the same sequence of augmentations.

    Returns:
        An ``albumentations.Compose`` called as ``t(image=(H, W, 3) uint8, mask=(H, W) int)`` and
        returning ``{"image": ..., "mask": ...}`` (the mask keeps its dtype and ids).

    Raises:
        ValueError: unknown ``level`` or a bad ``size``.
        ImportError: albumentations older than 2.0 (see :func:`_albumentations`).
    """
    import cv2

    A = _albumentations()
    if level not in LEVELS:
        raise ValueError(f"level={level!r}; expected one of {', '.join(LEVELS)}")
    size = _size(size)
    nearest, linear, constant = cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.BORDER_CONSTANT
    ops: list = []
    if level != "none":
        ops += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5 if level != "light" else 0.0)]
        affine = {"light": dict(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=0, shear=0),
                  "medium": dict(scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), rotate=(-30, 30), shear=(-8, 8)),
                  "strong": dict(scale=(0.7, 1.3), translate_percent=(-0.1, 0.1), rotate=(-45, 45), shear=(-12, 12))}
        ops.append(A.Affine(**affine[level], interpolation=linear, mask_interpolation=nearest, border_mode=constant,
                            fill=0, fill_mask=ignore_index, p=0.7))
        if level == "strong":
            ops.append(A.ElasticTransform(alpha=30, sigma=5, interpolation=linear, mask_interpolation=nearest,
                                          border_mode=constant, fill=0, fill_mask=ignore_index, p=0.5))
        if photometric:
            ops.append(A.RandomBrightnessContrast(brightness_limit=0.2 if level == "light" else 0.3,
                                                  contrast_limit=0.2 if level == "light" else 0.3, p=0.7))
        if photometric and level in ("medium", "strong"):
            ops.append(A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.GaussNoise(std_range=(0.02, 0.08))], p=0.3))
    if size is not None:
        ops += [A.PadIfNeeded(min_height=size[0], min_width=size[1], border_mode=constant, fill=0,
                              fill_mask=ignore_index),
                A.RandomCrop(height=size[0], width=size[1])]
    if normalize:
        ops.append(A.Normalize())  # image only: albumentations never applies Normalize to masks
    return A.Compose(ops, seed=seed)


def eval_transform(size: int | tuple[int, int] | None = None, *, ignore_index: int = IGNORE_INDEX,
                   normalize: bool = False):
    """The evaluation counterpart: no randomness; pad to at least ``size`` then centre-crop to it.

    Evaluating on a *resized* image and mask would score the model on resampled labels; padding and
    cropping keep every labelled pixel as it was annotated.
    """
    import cv2

    A = _albumentations()

    size = _size(size)
    ops: list = []
    if size is not None:
        ops += [A.PadIfNeeded(min_height=size[0], min_width=size[1], border_mode=cv2.BORDER_CONSTANT, fill=0,
                              fill_mask=ignore_index),
                A.CenterCrop(height=size[0], width=size[1])]
    if normalize:
        ops.append(A.Normalize())
    return A.Compose(ops)


#: per transform: the arguments worth showing (everything else is left at a default or is plumbing)
_SHOWN_ARGS = {
    "Affine": ("rotate", "scale", "shear", "translate_percent"),
    "ElasticTransform": ("alpha", "sigma"),
    "RandomBrightnessContrast": ("brightness_limit", "contrast_limit"),
    "GaussianBlur": ("blur_limit",),
    "GaussNoise": ("std_range",),
    "PadIfNeeded": ("min_height", "min_width"),
    "RandomCrop": ("height", "width"),
    "CenterCrop": ("height", "width"),
    "Resize": ("height", "width"),
    "Normalize": ("mean", "std"),
}


def _short(value) -> str:
    if isinstance(value, dict):
        values = list(value.values())
        if values and all(v == values[0] for v in values):   # {'x': (a, b), 'y': (a, b)} -> a..b
            return _short(values[0])
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items())
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        lo, hi = value
        if lo == -hi and hi != 0:
            return f"±{hi:g}"
        return f"{lo:g}..{hi:g}" if lo != hi else f"{lo:g}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_transform(transform, indent: str = "") -> list[str]:
    """One short line per step of an albumentations pipeline, instead of its repr (one wall of every argument).

    Each line names the transform, its probability ``p``, the few arguments that say what it does, and for
    geometric transforms how the mask is treated: ``mask: nearest`` (``cv2.INTER_NEAREST`` on a warp, or
    ``cv2.INTER_NEAREST_EXACT``: the safe choices for class ids), ``mask: legacy nearest (shifted ...)`` for a
    resize (:data:`RESIZING`) with ``cv2.INTER_NEAREST``, and ``fill_mask`` (the value of pixels brought in
    from outside). Transforms that only change pixel values say ``image only``.

    Args:
        transform: an ``albumentations.Compose``, ``OneOf`` or single transform.
        indent: prefix for nested pipelines.

    Returns:
        ``list[str]``, e.g. ``["HorizontalFlip  p=0.5", "Affine  p=0.7  rotate ±30, ...  mask: nearest, fill_mask 255"]``.
    """
    import cv2

    name = type(transform).__name__
    p = getattr(transform, "p", 1.0)
    children = getattr(transform, "transforms", None)
    if children is not None:
        lines = [] if name == "Compose" and not indent else [f"{indent}{name}  p={p:g}, of:"]
        inner = indent if name == "Compose" and not indent else indent + "    "
        for child in children:
            lines += describe_transform(child, inner)
        return lines
    try:
        args = transform.get_transform_init_args()
    except Exception:  # noqa: BLE001 - not an albumentations transform: name only
        args = {}
    parts = [f"{k.replace('_limit', '').replace('translate_percent', 'shift')} {_short(args[k])}"
             for k in _SHOWN_ARGS.get(name, ()) if k in args]
    mask_parts = []
    if "mask_interpolation" in args:
        mi = args["mask_interpolation"]
        if mi == cv2.INTER_NEAREST and name in RESIZING:
            mask_parts.append("mask: legacy nearest (shifted half a pixel; use INTER_NEAREST_EXACT)")
        elif mi in (cv2.INTER_NEAREST, cv2.INTER_NEAREST_EXACT):
            mask_parts.append("mask: nearest")
        else:
            mask_parts.append(f"mask: interpolation {mi} (NOT nearest)")
    if "fill_mask" in args and name not in ("RandomCrop", "CenterCrop"):
        mask_parts.append(f"fill_mask {_short(args['fill_mask'])}")
    try:
        import albumentations as A

        if isinstance(transform, A.ImageOnlyTransform):
            mask_parts.append("image only")
    except ImportError:  # pragma: no cover - albumentations is a course requirement
        pass
    line = f"{indent}{name}  p={p:g}"
    if parts:
        line += "  " + ", ".join(parts)
    if mask_parts:
        line += "  [" + ", ".join(mask_parts) + "]"
    return [line]


def audit_transform(transform: Callable, image: np.ndarray, mask: np.ndarray, *, ignore_index: int = IGNORE_INDEX,
                    trials: int = 5) -> dict:
    """Check that a pipeline treats the mask as labels: nearest resampling, no normalisation, no new ids.

    Runs ``transform(image=image, mask=mask)`` ``trials`` times and checks every output mask.

    Args:
        transform: an albumentations pipeline (or anything with the same call contract).
        image: ``(H, W, 3) uint8``.
        mask: ``(H, W)`` integer class ids (``ignore_index`` allowed).
        ignore_index: the one value a transform may add (for pixels from outside the image).
        trials: how many random draws to check.

    Returns:
        ``{"ids_in": sorted ids of the input, "ids_out": ids seen in the outputs, "dtype_out": ...,
        "verdict": one sentence saying that the pipeline passed and what was checked}`` (a pipeline that
        breaks a rule raises instead, see below).

    Raises:
        ValueError: the output mask has a floating dtype (normalised or interpolated), class ids that
            were not in the input (bilinear/cubic resampling averages neighbours), or a different shape
            from the image (image and mask out of sync). The message says which and how to fix it.
        TypeError: ``mask`` is not an integer array.
    """
    mask = np.asarray(mask)
    if not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"mask must hold integer class ids, got dtype {mask.dtype}")
    ids_in = set(np.unique(mask).tolist())
    ids_out: set[int] = set()
    dtype_out = None
    for _ in range(int(trials)):
        out = transform(image=image, mask=mask)
        m = np.asarray(out["mask"].numpy() if hasattr(out["mask"], "numpy") else out["mask"])
        dtype_out = m.dtype
        img = out["image"]
        img_hw = tuple(img.shape[-2:]) if hasattr(img, "permute") else tuple(np.asarray(img).shape[:2])
        if m.shape[:2] != img_hw:
            raise ValueError(f"the transform returned an image of size {img_hw} but a mask of size {m.shape[:2]}: "
                             f"image and mask are out of sync -- pass both in one call, transform(image=..., mask=...)")
        if np.issubdtype(m.dtype, np.floating):
            frac = m[(m != np.round(m))]
            raise ValueError(f"the transform returned a {m.dtype} mask"
                             + (f" with non-integer values such as {frac[:3].tolist()}" if frac.size else "")
                             + "; masks must stay integer class ids: do not normalise or divide them, and resample "
                               "them with nearest neighbour (mask_interpolation=cv2.INTER_NEAREST_EXACT for a "
                               "resize, cv2.INTER_NEAREST for a warp)")
        new = set(np.unique(m).tolist()) - ids_in - {ignore_index}
        if new:
            raise ValueError(f"the transform invented class ids {sorted(new)} that were not in the input mask "
                             f"(input ids {sorted(ids_in)}): the mask was resampled with bilinear/cubic "
                             f"interpolation; use nearest neighbour for masks")
        ids_out |= set(np.unique(m).tolist())
    added = " (+ ignore_index where pixels came from outside)" if ignore_index in ids_out - ids_in else ""
    verdict = (f"passed: {int(trials)} draws, the mask stayed {dtype_out} class ids {sorted(ids_out - {ignore_index})}"
               f"{added}, same size as the image, no new class")
    return {"ids_in": sorted(ids_in), "ids_out": sorted(ids_out), "dtype_out": str(dtype_out), "verdict": verdict}


def mask_offset(transform: Callable, size: int = 97) -> tuple[float, float]:
    """How far a transform moves the mask against the image: mean ``(rows, columns)`` offset in output pixels.

    The probe image holds each pixel's own position, ``(row, column, 1)`` as float32, so after the transform
    its first two channels say *where the image sampled* (bilinear interpolation reproduces a linear ramp
    exactly). The probe mask holds the same positions as one code ``row * size + column``, so after the
    transform it says *which pixel each label came from*. Their difference, converted from input to output
    pixels with the local Jacobian of the transform, is averaged over the pixels whose image sample lies
    inside the input (2 pixels away from any border fill).

    Args:
        transform: called as ``transform(image=(size, size, 3) float32, mask=(size, size) float32)``, e.g. an
            ``albumentations.Compose`` (one random draw; seed it for a repeatable answer).
        size: side of the probe, at most 4096 (the codes stay exact in float32).

    Returns:
        ``(rows, columns)``: positive means the mask lies further down / right than the image. OpenCV's legacy
        ``INTER_NEAREST`` resize gives about ``(0.5, 0.5)`` for a non-integer factor; ``INTER_NEAREST_EXACT``,
        and ``INTER_NEAREST`` in a warp (``Affine``, ``ElasticTransform``), give about ``(0, 0)``.

    Raises:
        ValueError: ``size`` outside 8..4096, or no output pixel sampled the inside of the probe.
    """
    from scipy import ndimage

    if not 8 <= int(size) <= 4096:
        raise ValueError(f"size must be between 8 and 4096, got {size!r}")
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    out = transform(image=np.stack([yy, xx, np.ones_like(xx)], axis=-1), mask=yy * size + xx)
    image, code = np.asarray(out["image"], np.float64), np.asarray(out["mask"], np.float64)
    rows, cols = image[..., 0], image[..., 1]
    inside = (image[..., 2] > 1 - 1e-4) & (rows >= 0) & (cols >= 0) & (rows <= size - 1) & (cols <= size - 1)
    inside = ndimage.binary_erosion(inside, iterations=2)
    if not inside.any():
        raise ValueError("no output pixel sampled the inside of the probe; give a larger size")
    (dr_dy, dr_dx), (dc_dy, dc_dx) = np.gradient(rows), np.gradient(cols)
    jacobian = np.stack([np.stack([dr_dy, dr_dx], -1), np.stack([dc_dy, dc_dx], -1)], -2)[inside]   # (K, 2, 2)
    taken = np.stack([np.floor(code / size) - rows, code % size - cols], -1)[inside]              # input pixels
    offset = -np.linalg.solve(jacobian, taken[..., None])[..., 0].mean(0)    # label from above-left = mask moved down-right
    return float(offset[0]) + 0.0, float(offset[1]) + 0.0


def paired_crop_flip(image: np.ndarray, mask: np.ndarray, size: int | tuple[int, int],
                     rng: np.random.Generator, *, p_flip: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A random crop and horizontal flip applied identically to an image and its mask, by hand.

    One random draw decides the crop corner and the flip, and both arrays are indexed with it:
    that is all "keeping image and mask in sync" means.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array.
        mask: ``(H, W)`` class ids.
        size: crop ``(h, w)`` (or one int), at most the image size.
        rng: a NumPy ``Generator``; draws, in this order, ``top = rng.integers(0, H - h + 1)``,
            ``left = rng.integers(0, W - w + 1)``, then ``rng.random() < p_flip`` for the flip.
        p_flip: probability of the horizontal flip.

    Returns:
        ``(image_crop, mask_crop)`` with spatial size ``(h, w)``, dtypes unchanged.

    Raises:
        ValueError: image and mask sizes differ, or the crop is larger than the image.
    """
    h, w = _size(size)
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image is {image.shape[:2]} but mask is {mask.shape[:2]}; expected the same (H, W)")
    H, W = mask.shape[:2]
    if h > H or w > W:
        raise ValueError(f"crop {(h, w)} is larger than the image {(H, W)}; pad first")
    top = int(rng.integers(0, H - h + 1))
    left = int(rng.integers(0, W - w + 1))
    flip = bool(rng.random() < p_flip)
    image, mask = image[top:top + h, left:left + w], mask[top:top + h, left:left + w]
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)
