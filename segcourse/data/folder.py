"""``SegmentationFolder``: a torch ``Dataset`` over any ``root/images`` + ``root/masks`` folder.

The folder format (what ``python -m segcourse data build`` and the real-dataset recipes write)::

    root/images/<stem>.<png|jpg|jpeg|tif|tiff|bmp>     RGB or greyscale image
    root/masks/<stem>.<png|tif|tiff|bmp>               one class id per pixel (indexed "P" or greyscale "L" PNG)

Images and masks are **paired by file stem**, never by position in a sorted listing: a missing or
extra file then raises an error naming it instead of silently shifting every later pair by one (a
bug of the source tutorials, which zip two ``sorted(os.listdir(...))`` lists). Image and mask may
have different extensions (``0001.jpg`` + ``0001.png``).

Every problem is a :class:`ValueError` naming the file and what was expected:

* at construction -- an image with no mask, a mask with no image, two files with the same stem,
  a JPEG mask (lossy compression invents class ids along edges), a missing ``images/``/``masks/``;
* when a sample is read -- an unreadable or truncated file, a mask that is not single-channel,
  image/mask size mismatch, mask values outside ``[0, num_classes)`` other than ``ignore_index``
  (negative ids included: a 32-bit ``"I"`` TIFF can hold them), a mask carrying an EXIF orientation.
  ``validate()`` reads every sample once to find them all up front.

EXIF orientation: a phone stores its photos sideways with an ``Orientation`` tag that viewers obey.
Annotation tools draw the mask on the *displayed* image (Labelme applies the tag when it loads a
photo), so :func:`read_image` applies it too (``PIL.ImageOps.exif_transpose``), and image and mask
line up -- even for a square photo, where a sideways image would pass the size check unnoticed.
A mask must store its pixels upright: one with an orientation tag is refused.

Convention matched: torchvision's segmentation references (``references/segmentation``): image as a
float tensor ``(3, H, W)`` in ``[0, 1]``, mask as an ``int64`` tensor ``(H, W)`` of class ids with
``ignore_index`` (255) for "do not score"; the mask is never normalised or interpolated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

from .._checks import check_int
from ..constants import IGNORE_INDEX

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")
_LOSSY = (".jpg", ".jpeg")


def _listing(folder: Path, extensions: tuple[str, ...], what: str, reject: tuple[str, ...] = ()) -> dict[str, Path]:
    """``stem -> path`` for the files of ``folder`` with one of ``extensions`` (hidden files skipped)."""
    if not folder.is_dir():
        raise ValueError(f"expected a folder of {what} at {folder}, but it does not exist")
    out: dict[str, Path] = {}
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.is_file():
            continue
        ext = path.suffix.lower()
        if ext in reject:
            raise ValueError(f"mask {path} is a JPEG: lossy compression changes class ids along edges; "
                             f"expected a lossless {'/'.join(extensions)} file (save masks as PNG)")
        if ext not in extensions:
            continue
        if path.stem in out:
            raise ValueError(f"two {what} share the stem {path.stem!r}: {out[path.stem].name} and {path.name}; "
                             f"expected one file per stem")
        out[path.stem] = path
    return out


#: The EXIF tag that says how a viewer must rotate/flip the stored pixels (1 = as stored).
EXIF_ORIENTATION = 0x0112


def _open(path: Path, what: str) -> Image.Image:
    """Open and decode ``path``; the caller closes the returned image (``with _open(...) as img``)."""
    img = None
    try:
        img = Image.open(path)
        img.load()      # decodes now, so a truncated file fails here and not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        if img is not None:
            img.close()
        raise ValueError(f"cannot read {what} {path}: {err}; expected a complete, readable image file") from None
    return img


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (OSError, ValueError, TypeError, KeyError, SyntaxError):  # a malformed EXIF block: upright, as viewers do
        return 1


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``(H, W, 3) uint8`` RGB (greyscale is repeated, alpha dropped), upright.

    An EXIF ``Orientation`` tag (phone photos) is applied, as image viewers and Labelme do, so the
    array is the picture as displayed and annotated (``PIL.ImageOps.exif_transpose``).

    Raises:
        ValueError: the file is missing, unreadable or truncated, or is not 8-bit.
    """
    path = Path(path)
    with _open(path, "image") as img:
        if img.mode in ("I;16", "I", "F"):
            raise ValueError(f"image {path} has mode {img.mode!r} (16-bit/float); expected an 8-bit RGB or greyscale image")
        if _orientation(img) != 1:
            upright = ImageOps.exif_transpose(img)
            try:
                return np.array(upright.convert("RGB"))
            finally:
                upright.close()
        return np.array(img.convert("RGB"))


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask file as ``(H, W)`` integer class ids (``uint8``, ``uint16`` or, for a 32-bit "I" TIFF,
    ``int32``), without any conversion.

    An indexed ("P") PNG gives its palette indices, a greyscale ("L"/"I;16") PNG its values.

    Raises:
        ValueError: unreadable/truncated file; a colour (RGB/RGBA) mask, which holds colours, not ids;
            a mask with an EXIF orientation other than "as stored" (its pixels would be rotated against
            the ids a viewer shows: save the mask upright, without the tag).
    """
    path = Path(path)
    with _open(path, "mask") as img:
        if img.mode not in ("P", "L", "I;16", "I", "1"):
            raise ValueError(f"mask {path} has mode {img.mode!r}; expected a single-channel mask of class ids "
                             f"(indexed 'P' or greyscale 'L' PNG). An RGB mask stores colours: map them to ids first")
        orientation = _orientation(img)
        if orientation != 1:
            raise ValueError(f"mask {path} carries EXIF orientation {orientation}: viewers would show it rotated or "
                             f"flipped against its stored class ids; expected a mask saved upright without an "
                             f"orientation tag (e.g. np.array(ImageOps.exif_transpose(img)) saved again)")
        arr = np.array(img)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return arr


class SegmentationFolder(Dataset):
    """Pairs ``root/images/<stem>.*`` with ``root/masks/<stem>.*`` and returns tensors ready for a model.

    Args:
        root: folder containing ``images/`` and ``masks/``.
        num_classes: number of classes ``C``; valid mask values are ``0..C-1`` and ``ignore_index``.
        transform: optional albumentations transform (or any callable with the same contract),
            called as ``transform(image=image, mask=mask)`` on ``(H, W, 3) uint8`` / ``(H, W)`` arrays and
            returning a dict with ``"image"`` and ``"mask"``, so geometric changes hit both alike
            (albumentations resizes masks with nearest-neighbour and never normalises them).
        ignore_index: mask value that marks pixels to leave out of losses and metrics.

    Shapes:
        item ``i`` -> ``(image, mask)``: ``image (3, H, W) float32`` in ``[0, 1]`` (or whatever a
        normalising transform produced), ``mask (H, W) int64``.

    Attributes:
        stems: the paired stems, sorted; ``pairs``: the ``(image_path, mask_path)`` of each.

    Raises:
        ValueError: see the module docstring (each message names the offending file).
        TypeError: ``num_classes`` is not an int or ``transform`` is not callable.
        ValueError: ``num_classes < 1``.

    Example::

        >>> from segcourse.data import ensure_dataset
        >>> ds = SegmentationFolder(ensure_dataset("cells", "val", count=4, size=64), num_classes=2)
        >>> image, mask = ds[0]; image.shape, mask.dtype
        (torch.Size([3, 64, 64]), torch.int64)
    """

    def __init__(self, root: str | os.PathLike, num_classes: int, transform: Callable | None = None,
                 ignore_index: int = IGNORE_INDEX):
        num_classes = check_int(num_classes, "num_classes")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable (e.g. an albumentations.Compose), got {type(transform).__name__}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"dataset root {self.root} does not exist; expected a folder with images/ and masks/")
        self.num_classes = int(num_classes)
        self.transform = transform
        self.ignore_index = int(ignore_index)
        images = _listing(self.root / "images", IMAGE_EXTENSIONS, "images")
        masks = _listing(self.root / "masks", MASK_EXTENSIONS, "masks", reject=_LOSSY)
        no_mask = sorted(set(images) - set(masks))
        if no_mask:
            raise ValueError(f"image {images[no_mask[0]]} has no mask: expected {self.root / 'masks' / no_mask[0]}.png "
                             f"(masks are paired with images by file stem)"
                             + (f"; {len(no_mask) - 1} more image(s) have no mask" if len(no_mask) > 1 else ""))
        no_image = sorted(set(masks) - set(images))
        if no_image:
            raise ValueError(f"mask {masks[no_image[0]]} has no image: expected an image named {no_image[0]}.* in "
                             f"{self.root / 'images'}"
                             + (f"; {len(no_image) - 1} more mask(s) have no image" if len(no_image) > 1 else ""))
        if not images:
            raise ValueError(f"no images found in {self.root / 'images'} (extensions {', '.join(IMAGE_EXTENSIONS)})")
        self.stems = sorted(images)
        self.pairs = [(images[s], masks[s]) for s in self.stems]

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw, checked pair: ``image (H, W, 3) uint8``, ``mask (H, W)`` integer ids (no transform)."""
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        mask = read_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise ValueError(f"size mismatch: image {image_path} is {image.shape[1]}x{image.shape[0]} (WxH) but mask "
                             f"{mask_path} is {mask.shape[1]}x{mask.shape[0]}; expected the same size")
        bad = ((mask < 0) | (mask >= self.num_classes)) & (mask != self.ignore_index)
        if bad.any():
            values = np.unique(mask[bad])
            if values[0] < 0:
                raise ValueError(f"mask {mask_path} has negative values {values[values < 0][:8].tolist()}; "
                                 f"expected class ids 0..{self.num_classes - 1} or ignore_index={self.ignore_index} "
                                 f"(a 32-bit 'I' mask can store negatives: was -1 meant as 'ignore'? map it to "
                                 f"{self.ignore_index} or pass ignore_index=-1)")
            raise ValueError(f"mask {mask_path} has values {values[:8].tolist()} outside [0, {self.num_classes}); "
                             f"expected class ids 0..{self.num_classes - 1} or ignore_index={self.ignore_index}. "
                             f"(A mask saved as 0/255 needs mask // 255; a colour mask needs a colour -> id map.)")
        return image, mask

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(index)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return _image_tensor(image), _mask_tensor(mask)

    def validate(self) -> int:
        """Read every pair once and raise on the first bad one. Returns the number of pairs checked."""
        for i in range(len(self)):
            self.load(i)
        return len(self)

    def __repr__(self) -> str:
        return f"SegmentationFolder({str(self.root)!r}, num_classes={self.num_classes}, {len(self)} pairs)"


def _image_tensor(image) -> torch.Tensor:
    if isinstance(image, torch.Tensor):          # e.g. albumentations' ToTensorV2: already (3, H, W)
        return image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    return tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor.float()


def _mask_tensor(mask) -> torch.Tensor:
    if isinstance(mask, torch.Tensor):
        return mask.long()
    return torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64))


__all__ = ["IMAGE_EXTENSIONS", "MASK_EXTENSIONS", "SegmentationFolder", "read_image", "read_mask"]
