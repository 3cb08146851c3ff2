"""Recipes for real datasets: download, verify, extract and convert to the course's folder format.

Four public datasets the lessons can use when they are present (nothing in a lesson *needs* them;
the synthetic sets stand in for them offline):

=========================  =====================================  ==========================================
recipe                     original layout                        classes in our masks
=========================  =====================================  ==========================================
``oxford_pet``             ``images/*.jpg``,                      0 background, 1 pet, 255 ignore
                           ``annotations/trimaps/*.png``          (trimap 1 = pet, 2 = background,
                           (values 1/2/3), ``trainval.txt``        3 = the uncertain border -> ignore)
``isbi2012``               ``train-volume.tif``,                  0 cell, 1 membrane
                           ``train-labels.tif`` (30-page stacks,  (labels: 255 = cell, 0 = membrane)
                           labels 0/255)
``massachusetts_buildings``  ``{train,valid,test}/{sat,map}/``    0 ground, 1 building, 255 ignore where the
                           (Toronto) or ``tiff/{train,            aerial photo is blank (pure white: outside
                           train_labels,...}`` (Kaggle mirror)     the surveyed area)
``voc2012``                ``VOCdevkit/VOC2012/JPEGImages``,      0 background, 1..20 objects, 255 ignore
                           ``SegmentationClass`` (palette PNG,    (the border VOC draws around every object
                           255 = border), ``ImageSets/...``       is kept as ignore)
=========================  =====================================  ==========================================

Each becomes ``data_root()/NAME/``::

    images/<stem>.jpg|png   the original JPEG copied byte for byte, or an RGB/grey PNG
    masks/<stem>.png        indexed ("P") PNG: pixel value = class id, 255 = ignore
    splits/<split>.txt      one stem per line (train / val / test as the publisher defines them)
    dataset.json            manifest (recipe, classes, counts), written last

which :class:`segcourse.data.SegmentationFolder` reads (pairing files by stem).

Safety, in the order things happen (:mod:`segcourse.data.download` does the work):

1. every file is downloaded to a temporary file beside ``NAME`` and renamed only when complete and its checksum
   matches (SHA-256 where we have one; the MD5 that torchvision pins where that is all there is).
   A file with no checksum at all (ISBI 2012's) is not downloaded over the network unless you ask
   for it (``allow_unverified=True``, ``--allow-unverified``), and then only after a loud
   :class:`~segcourse.data.download.UnverifiedDownloadWarning` that prints the hash to pin with
   ``--sha256``; files you pass with ``--source`` get the same warning;
2. archives are checked member by member (no absolute paths, ``..``, links out of the folder,
   device files; at most :data:`~segcourse.data.download.MAX_MEMBERS` members and
   :data:`~segcourse.data.download.MAX_TOTAL_BYTES` uncompressed bytes) before anything is
   written, and extracted into a temporary folder renamed into place;
3. the conversion writes into a hidden temporary folder that is renamed to ``NAME/`` only when
   every file was written, so an interrupted conversion leaves nothing that looks complete.

Command line: ``python -m segcourse data prepare oxford_pet [--source DIR_OR_ARCHIVE] [--sha256 FILE=HEX]
[--allow-unverified]``
(also ``python -m segcourse.data.recipes ...``). A download that cannot reach the publisher's URL tries the
recipe's mirrors (same checksum). ``python -m segcourse data check-urls`` asks every recipe URL whether it still
serves the file (:func:`check_urls`; for maintainers, it needs the internet).

References:
    Parkhi et al., "Cats and Dogs", CVPR 2012, https://www.robots.ox.ac.uk/~vgg/data/pets/ ;
    Arganda-Carreras et al., "Crowdsourcing the creation of image segmentation algorithms for
    connectomics" (ISBI 2012 challenge), Front. Neuroanat. 2015 ; Ronneberger et al., "U-Net",
    MICCAI 2015, https://arxiv.org/abs/1505.04597 ; Mnih, "Machine Learning for Aerial Image
    Labeling", PhD thesis, Toronto 2013, https://www.cs.toronto.edu/~vmnih/data/ ; Everingham et al.,
    "The PASCAL Visual Object Classes Challenge", IJCV 2010, https://www.robots.ox.ac.uk/~vgg/projects/pascal/VOC/voc2012/ .
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import IGNORE_INDEX
from ..files import atomic_directory, save_indexed_png
from .download import download, safe_extract
from .paths import MANIFEST

__all__ = ["RECIPES", "Recipe", "RemoteFile", "UrlCheck", "check_urls", "convert_isbi2012", "convert_massachusetts", "convert_oxford_pet",
           "convert_voc2012", "get_recipe", "main", "prepare", "read_split", "VOC_CLASSES"]



@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset as its publisher distributes it.

    Attributes:
        filename: the name it is saved under (and looked for in a ``--source`` folder).
        url: where the publisher serves it.
        sha256: its SHA-256, or None when we have not verified one (see the module docstring).
        md5: an MD5 from a trusted pin (torchvision's dataset classes), used only when sha256 is None.
        mirrors: other URLs serving the same bytes (the same checksum applies), tried in order when ``url``
            cannot be reached; a file that arrives with another checksum is refused, never tried elsewhere.
        size: its size in bytes where a published record gives one (:func:`check_urls` compares the
            server's ``Content-Length`` with it), else None.
    """

    filename: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    mirrors: tuple[str, ...] = ()
    size: int | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        """``url`` then the ``mirrors``."""
        return (self.url, *self.mirrors)


@dataclass(frozen=True)
class Recipe:
    """How to obtain one real dataset and turn it into the course's folder format."""

    name: str
    title: str
    homepage: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    files: tuple[RemoteFile, ...]
    convert: Callable[[Path, Path], dict]
    notes: str = ""
    manual: bool = False  # no direct download link: the learner passes --source


# ------------------------------------------------------------------------------------------- helpers
def _find_dir(root: Path, name: str, must_contain: str | None = None) -> Path:
    """The folder called ``name`` somewhere under ``root`` (the shallowest one)."""
    hits = sorted((p for p in [root, *root.rglob(name)] if p.is_dir() and p.name == name),
                  key=lambda p: len(p.parts))
    if must_contain is not None:
        hits = [p for p in hits if (p / must_contain).exists()]
    if not hits:
        raise ValueError(f"{root}: no folder named {name!r}" + (f" containing {must_contain!r}" if must_contain else "")
                         + "; is this the dataset's original archive, fully extracted?")
    return hits[0]


def _find_file(root: Path, name: str) -> Path:
    hits = sorted((p for p in root.rglob(name) if p.is_file()), key=lambda p: len(p.parts))
    if not hits:
        raise ValueError(f"{root}: file {name!r} not found; is this the dataset's original archive, fully extracted?")
    return hits[0]


def _visible(paths) -> list[Path]:
    """Drop macOS resource forks (``._NAME``) and hidden files -- the Pet trimaps ship with them."""
    return sorted(p for p in paths if p.is_file() and not p.name.startswith("."))


def _copy_or_convert_image(src: Path, images_dir: Path, stem: str) -> tuple[int, int]:
    """Copy an RGB JPEG byte for byte (no second lossy compression); anything else becomes an RGB PNG.

    Returns:
        ``(height, width)`` of the image.
    """
    from PIL import Image

    try:
        with Image.open(src) as image:
            image.load()
            size = (image.height, image.width)
            if image.format == "JPEG" and image.mode in ("RGB", "L"):
                shutil.copyfile(src, images_dir / f"{stem}.jpg")
            else:  # CMYK / RGBA / PNG-in-a-.jpg files exist in Oxford Pet
                image.convert("RGB").save(images_dir / f"{stem}.png", format="PNG")
    except OSError as exc:
        raise ValueError(f"{src}: unreadable or truncated image ({exc})") from exc
    return size


def _write_splits(out: Path, splits: Mapping[str, Sequence[str]]) -> None:
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for split, stems in splits.items():
        (out / "splits" / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems), encoding="utf-8")


def read_split(root: str | os.PathLike, split: str) -> list[str]:
    """The stems of one split of a converted dataset (``root/splits/<split>.txt``).

    Raises:
        ValueError: the split does not exist (the message lists the ones that do).
    """
    path = Path(root) / "splits" / f"{split}.txt"
    if not path.is_file():
        have = sorted(p.stem for p in (Path(root) / "splits").glob("*.txt"))
        raise ValueError(f"{root}: no split {split!r}; available: {have}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_values(mask: np.ndarray, allowed, where) -> None:
    bad = np.setdiff1d(np.unique(mask), np.asarray(allowed))
    if bad.size:
        raise ValueError(f"{where}: unexpected mask values {bad[:8].tolist()}; expected only {list(allowed)}")


# ------------------------------------------------------------------------------------ Oxford-IIIT Pet
def convert_oxford_pet(raw: Path, out: Path) -> dict:
    """Oxford-IIIT Pet trimaps -> binary pet masks with the uncertain border ignored.

    Trimap values: 1 = pet, 2 = background, 3 = "not classified" (a band along the outline that the
    annotators left undecided). Mapped to 1, 0 and :data:`~segcourse.constants.IGNORE_INDEX`.
    Splits: the publisher's ``trainval.txt`` -> ``train``, ``test.txt`` -> ``test``.

    Raises:
        ValueError: a trimap with values other than 1/2/3, an image/trimap size mismatch, a trimap
            with no image (each names the file).
    """
    from PIL import Image

    trimaps = _find_dir(raw, "trimaps")
    photo_dirs = [p for p in [raw, *raw.rglob("images")] if p.is_dir() and p.name == "images"
                  and any(q.suffix.lower() == ".jpg" for q in p.iterdir())]
    if not photo_dirs:
        raise ValueError(f"{raw}: no 'images' folder with .jpg photos; is images.tar.gz fully extracted?")
    images = photo_dirs[0]
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    lut[1], lut[2], lut[3] = 1, 0, IGNORE_INDEX
    by_stem = {p.stem: p for p in _visible(images.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    written = []
    for path in _visible(trimaps.glob("*.png")):
        stem = path.stem
        if stem not in by_stem:
            raise ValueError(f"{path}: trimap without an image (looked for {stem}.jpg in {images})")
        with Image.open(path) as pil:
            trimap = np.asarray(pil)
        if trimap.ndim == 3:
            trimap = trimap[..., 0]
        _check_values(trimap, (1, 2, 3), path)
        h, w = _copy_or_convert_image(by_stem[stem], out / "images", stem)
        if (h, w) != trimap.shape:
            raise ValueError(f"{path}: trimap is {trimap.shape[0]}x{trimap.shape[1]} but its image is {h}x{w}")
        save_indexed_png(out / "masks" / f"{stem}.png", lut[trimap], RECIPES["oxford_pet"].palette)
        written.append(stem)
    present = set(written)
    splits = {}
    annotations = trimaps.parent
    for split, fname in (("train", "trainval.txt"), ("test", "test.txt")):
        if (annotations / fname).is_file():
            lines = (annotations / fname).read_text(encoding="utf-8").splitlines()
            splits[split] = [ln.split()[0] for ln in lines if ln.strip() and not ln.startswith("#")
                             and ln.split()[0] in present]
    if not splits:
        splits = {"all": written}
    _write_splits(out, splits)
    return {"count": len(written), "splits": {k: len(v) for k, v in splits.items()}}


# ------------------------------------------------------------------------------------------ ISBI 2012
def _read_stack(path: Path) -> list[np.ndarray]:
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as stack:
            return [np.asarray(page.convert("L")).copy() for page in ImageSequence.Iterator(stack)]
    except OSError as exc:
        raise ValueError(f"{path}: unreadable or truncated TIFF stack ({exc})") from exc


def convert_isbi2012(raw: Path, out: Path, val_slices: int = 6) -> dict:
    """ISBI 2012 EM stacks -> one PNG per slice.

    ``train-volume.tif`` holds 30 grey 512x512 slices, ``train-labels.tif`` the matching labels
    (255 = cell interior, 0 = membrane). Membranes become class 1 -- the thin structure a U-Net
    must find -- and cells class 0. The last ``val_slices`` slices form ``val`` (neighbouring
    slices are nearly identical, so a random split would leak); the rest are ``train``.

    Raises:
        ValueError: the two stacks differ in page count or size, or a label is not 0/255.
    """
    volume = _read_stack(_find_file(raw, "train-volume.tif"))
    labels = _read_stack(_find_file(raw, "train-labels.tif"))
    if len(volume) != len(labels):
        raise ValueError(f"{raw}: train-volume.tif has {len(volume)} slices but train-labels.tif has {len(labels)}")
    if not 0 <= val_slices < len(volume):
        raise ValueError(f"val_slices={val_slices}; expected 0 <= val_slices < {len(volume)} (the stack size)")
    from PIL import Image

    stems = []
    for k, (image, label) in enumerate(zip(volume, labels)):
        where = f"{raw}/train-labels.tif page {k}"
        if image.shape != label.shape:
            raise ValueError(f"{where}: label is {label.shape} but the image slice is {image.shape}")
        _check_values(label, (0, 255), where)
        stem = f"slice_{k:02d}"
        Image.fromarray(image).save(out / "images" / f"{stem}.png", format="PNG")
        save_indexed_png(out / "masks" / f"{stem}.png", (label == 0).astype(np.uint8), RECIPES["isbi2012"].palette)
        stems.append(stem)
    cut = len(stems) - val_slices
    splits = {"train": stems[:cut], "val": stems[cut:]}
    _write_splits(out, splits)
    return {"count": len(stems), "splits": {k: len(v) for k, v in splits.items()}}


# ---------------------------------------------------------------------------- Massachusetts Buildings
_MASS_SPLITS = {"train": "train", "valid": "val", "val": "val", "test": "test"}


def _massachusetts_pairs(raw: Path) -> dict[str, list[tuple[Path, Path]]]:
    """``split -> [(photo, map), ...]`` for the Toronto layout or the Kaggle mirror's."""
    found: dict[str, list[tuple[Path, Path]]] = {}
    dirs = [raw, *(p for p in raw.rglob("*") if p.is_dir())]
    for d in dirs:
        if d.name == "sat" and (d.parent / "map").is_dir():                       # Toronto: train/sat + train/map
            split_name, maps = d.parent.name, d.parent / "map"
        elif (d.parent / f"{d.name}_labels").is_dir():                            # Kaggle: tiff/train + tiff/train_labels
            split_name, maps = d.name, d.parent / f"{d.name}_labels"
        else:
            continue
        if split_name not in _MASS_SPLITS:
            continue
        by_stem = {p.stem: p for p in _visible(maps.iterdir())}
        pairs = []
        for photo in _visible(d.iterdir()):
            if photo.stem not in by_stem:
                raise ValueError(f"{photo}: aerial photo without a building map (looked for {photo.stem}.tif in {maps})")
            pairs.append((photo, by_stem.pop(photo.stem)))
        if by_stem:
            orphan = next(iter(by_stem.values()))
            raise ValueError(f"{orphan}: building map without an aerial photo in {d}")
        found.setdefault(_MASS_SPLITS[split_name], []).extend(pairs)
    if not found:
        raise ValueError(f"{raw}: found neither the Toronto layout ({{train,valid,test}}/sat + map) nor the Kaggle "
                         f"one (tiff/train + tiff/train_labels); see the recipe's notes")
    return found


def convert_massachusetts(raw: Path, out: Path) -> dict:
    """Massachusetts Buildings 1500x1500 tiles -> PNG images and building masks.

    Maps are 0 (ground) / 255 (building), sometimes stored as RGB; a pixel is a building where any
    channel is above 127. Parts of some photos are blank white (outside the surveyed area): those
    pixels become :data:`~segcourse.constants.IGNORE_INDEX`, otherwise the model would be taught that
    white nothing is "ground". Splits: the publisher's train / valid (-> ``val``) / test.

    Raises:
        ValueError: a photo without a map or the reverse, a size mismatch (each names the file).
    """
    from PIL import Image

    splits: dict[str, list[str]] = {}
    count = 0
    for split, pairs in sorted(_massachusetts_pairs(raw).items()):
        for photo_path, map_path in pairs:
            try:
                with Image.open(photo_path) as pil:
                    photo = np.asarray(pil.convert("RGB"))
                with Image.open(map_path) as pil:
                    label = np.asarray(pil)
            except OSError as exc:
                raise ValueError(f"{photo_path} / {map_path}: unreadable or truncated TIFF ({exc})") from exc
            if label.ndim == 3:
                label = label.max(axis=-1)
            if label.shape != photo.shape[:2]:
                raise ValueError(f"{map_path}: map is {label.shape} but the photo is {photo.shape[:2]}")
            mask = (label > 127).astype(np.uint8)
            mask[(photo == 255).all(axis=-1)] = IGNORE_INDEX
            stem = photo_path.stem
            Image.fromarray(photo).save(out / "images" / f"{stem}.png", format="PNG")
            save_indexed_png(out / "masks" / f"{stem}.png", mask, RECIPES["massachusetts_buildings"].palette)
            splits.setdefault(split, []).append(stem)
            count += 1
    _write_splits(out, splits)
    return {"count": count, "splits": {k: len(v) for k, v in splits.items()}}


# ------------------------------------------------------------------------------------ Pascal VOC 2012
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


def _voc_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """VOC's colour map: bits of the class id spread over R, G, B (``VOCdevkit/VOCcode/VOClabelcolormap.m``)."""
    palette = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append((r, g, b))
    return palette


def convert_voc2012(raw: Path, out: Path) -> dict:
    """Pascal VOC 2012 segmentation -> the folder format, keeping the 255 border as ignore.

    ``SegmentationClass/*.png`` are palette PNGs whose *indices* are the class ids (0..20, 255 on
    the object borders and "difficult" regions). They must be read as indices: converting them
    to RGB first (a common bug) gives colours, not classes. Splits: ``ImageSets/Segmentation``
    ``train.txt`` and ``val.txt``.

    Raises:
        ValueError: a mask that is not a palette PNG, values outside 0..20/255, a listed image
            without a mask or a size mismatch (each names the file).
    """
    from PIL import Image

    voc = _find_dir(raw, "VOC2012", must_contain="SegmentationClass")
    jpegs, segs, lists = voc / "JPEGImages", voc / "SegmentationClass", voc / "ImageSets" / "Segmentation"
    allowed = (*range(len(VOC_CLASSES)), IGNORE_INDEX)
    splits: dict[str, list[str]] = {}
    done: set[str] = set()
    for split in ("train", "val"):
        if not (lists / f"{split}.txt").is_file():
            continue
        stems = [s.strip() for s in (lists / f"{split}.txt").read_text(encoding="utf-8").split() if s.strip()]
        for stem in stems:
            if stem not in done:
                mask_path = segs / f"{stem}.png"
                if not mask_path.is_file():
                    raise ValueError(f"{lists / (split + '.txt')}: {stem} is listed but {mask_path} does not exist")
                with Image.open(mask_path) as pil:
                    if pil.mode != "P":
                        raise ValueError(f"{mask_path}: mode {pil.mode!r}; expected a palette ('P') PNG whose "
                                         f"indices are class ids -- was it converted to RGB?")
                    mask = np.asarray(pil)
                _check_values(mask, allowed, mask_path)
                h, w = _copy_or_convert_image(jpegs / f"{stem}.jpg", out / "images", stem)
                if (h, w) != mask.shape:
                    raise ValueError(f"{mask_path}: mask is {mask.shape} but its image is {(h, w)}")
                save_indexed_png(out / "masks" / f"{stem}.png", mask, RECIPES["voc2012"].palette)
                done.add(stem)
            splits.setdefault(split, []).append(stem)
    if not splits:
        raise ValueError(f"{lists}: neither train.txt nor val.txt found")
    _write_splits(out, splits)
    return {"count": len(done), "splits": {k: len(v) for k, v in splits.items()}}


# ---------------------------------------------------------------------------------------- the table
# Checksums: the MD5s are the ones torchvision pins in its OxfordIIITPet and VOCSegmentation classes.
# We have not verified SHA-256 values ourselves, so none is listed (never invent one): the download
# then runs on the MD5, or, where there is none (ISBI; Massachusetts is manual), only with
# --allow-unverified and a loud warning that prints the computed SHA-256 -- pin it with
# ``--sha256 FILE=HEX`` once checked against a trusted copy.
#
# Hosts. Oxford moved its dataset downloads from www.robots.ox.ac.uk/~vgg/data/... and host.robots.ox.ac.uk (both
# reported dead or firewalled: keras-team/keras-io#1200 for the pets, pytorch/vision#9269 and #9271 for VOC) to
# thor.robots.ox.ac.uk over HTTPS: /datasets/pets/ (the URL keras-io's U-Net example downloads from now) and
# /pascal/VOC/voc2012/. The files are the same: the MD5s torchvision pins are kept, so a host serving other
# bytes is refused. VOC's mirror is the one pytorch/vision#9335 proposes (the d2l book's S3 bucket); the old
# addresses stay as the last mirrors. `python -m segcourse data check-urls` asks every host (not in CI: no
# internet there).
RECIPES: dict[str, Recipe] = {
    "oxford_pet": Recipe(
        name="oxford_pet", title="Oxford-IIIT Pet (trimaps)", homepage="https://www.robots.ox.ac.uk/~vgg/data/pets/",
        classes=("background", "pet"), palette=((0, 0, 0), (255, 128, 0)),
        files=(RemoteFile("images.tar.gz", "https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz",
                          md5="5c4f3ee8e5d25df40f4fd59a7f44e54c",
                          mirrors=("https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",)),
               RemoteFile("annotations.tar.gz", "https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz",
                          md5="95a8c909bbe2e81eed6a22bccdf3f68f",
                          mirrors=("https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",))),
        convert=convert_oxford_pet, notes="about 800 MB; CC BY-SA 4.0"),
    "isbi2012": Recipe(
        name="isbi2012", title="ISBI 2012 EM segmentation challenge", homepage="https://imagej.net/events/isbi-2012-segmentation-challenge",
        classes=("cell", "membrane"), palette=((0, 0, 0), (255, 255, 0)),
        files=(RemoteFile("train-volume.tif", "http://brainiac2.mit.edu/isbi_challenge/sites/default/files/train-volume.tif"),
               RemoteFile("train-labels.tif", "http://brainiac2.mit.edu/isbi_challenge/sites/default/files/train-labels.tif")),
        convert=convert_isbi2012,
        notes="no published checksum; the original server is often offline -- pass --source with the two .tif files"),
    "massachusetts_buildings": Recipe(
        name="massachusetts_buildings", title="Massachusetts Buildings", homepage="https://www.cs.toronto.edu/~vmnih/data/",
        classes=("ground", "building"), palette=((0, 0, 0), (255, 200, 0)), files=(),
        convert=convert_massachusetts, manual=True,
        notes="151 tiles served one by one (no archive, no checksums): download the folder "
              "https://www.cs.toronto.edu/~vmnih/data/mass_buildings/ or the Kaggle mirror, then pass --source"),
    "voc2012": Recipe(
        name="voc2012", title="Pascal VOC 2012 segmentation",
        homepage="https://www.robots.ox.ac.uk/~vgg/projects/pascal/VOC/voc2012/",
        classes=VOC_CLASSES, palette=tuple(_voc_palette(len(VOC_CLASSES))),
        files=(RemoteFile("VOCtrainval_11-May-2012.tar",
                          "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                          md5="6cd6e144f989b92b3379bac3b3de84fd", size=1_999_639_040,
                          mirrors=("https://d2l-data.s3-accelerate.amazonaws.com/VOCtrainval_11-May-2012.tar",
                                   "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar")),),
        convert=convert_voc2012, notes="2 GB"),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ValueError: unknown name (the message lists the recipes).
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown dataset recipe {name!r}; available: {', '.join(RECIPES)}") from None


_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _is_archive(filename: str) -> bool:
    """Decided by the name, not the content: a corrupt ``.tar.gz`` must fail extraction, not be copied."""
    return filename.lower().endswith(_ARCHIVE_SUFFIXES)


def _source_for(remote: RemoteFile, source: str | os.PathLike | None, n_files: int) -> str:
    if source is None:
        return remote.url
    text = os.fspath(source)
    src = Path(text)
    if src.is_dir():
        if not (src / remote.filename).is_file():
            raise FileNotFoundError(f"source {src}: {remote.filename} is not in that folder")
        return str(src / remote.filename)
    if "://" in text:                                   # a mirror: one file, or a base URL for several
        return text if n_files == 1 else f"{text.rstrip('/')}/{remote.filename}"
    if n_files == 1:
        return text
    raise ValueError(f"source {text!r}: this recipe needs {n_files} files; pass the folder (or base URL) that holds them")


def prepare(name: str, *, root: str | os.PathLike | None = None, source: str | os.PathLike | None = None,
            sha256: Mapping[str, str] | None = None, force: bool = False, progress: bool = True,
            allow_unverified: bool = False) -> Path:
    """Download (or take from ``source``), verify, extract and convert one real dataset.

    Args:
        name: a key of :data:`RECIPES`.
        root: the data folder (default :func:`segcourse.data.paths.data_root`). The result goes to
            ``root/NAME``; downloads to ``root/_downloads/NAME``, extracted originals to ``root/_raw/NAME``.
        source: where to take the files from instead of the publisher's URLs: a folder that holds
            them under their usual names, a ``file://``/``http`` URL, or (for a one-file recipe or
            ``massachusetts_buildings``) one archive or folder in the original layout.
        sha256: ``{filename: hex}`` overrides the recipe's checksums (``--sha256 FILE=HEX``).
        force: rebuild even if ``root/NAME`` is complete.
        progress: show download progress bars.
        allow_unverified: download a file with no checksum (``isbi2012``'s) over the network anyway,
            after a loud warning that prints its SHA-256. Without it such a download is refused
            (:class:`~segcourse.data.download.UnverifiedDownloadError`): pin the file with ``sha256=``
            or pass it with ``source=``.

    Returns:
        The dataset folder.

    Raises:
        ValueError: unknown recipe, a file that fails its checksum
            (:class:`~segcourse.data.download.ChecksumError`), an unsafe or corrupt archive, or data
            not in the original layout. Nothing half-written is left at ``root/NAME``.
    """
    recipe = get_recipe(name)
    from .paths import data_root

    root = Path(root) if root is not None else data_root()
    out = root / name
    if (out / MANIFEST).is_file() and not force:
        return out
    overrides = dict(sha256 or {})
    unknown = set(overrides) - {f.filename for f in recipe.files}
    if unknown:
        raise ValueError(f"--sha256 names {sorted(unknown)}, which recipe {name!r} does not download; "
                         f"its files are {[f.filename for f in recipe.files]}")
    if recipe.manual and source is None:
        raise ValueError(f"recipe {name!r} cannot be downloaded automatically ({recipe.notes}); "
                         f"pass the folder or archive with --source (source= in Python)")
    raw = root / "_raw" / name
    raw.mkdir(parents=True, exist_ok=True)
    if recipe.manual:
        src = Path(source)
        if src.is_dir():
            raw_input = src
        elif src.is_file():
            raw_input = safe_extract(src, raw / f"{src.name}.contents", overwrite=True)
        else:
            raise FileNotFoundError(f"source {source!r} does not exist")
    else:
        downloads = root / "_downloads" / name
        for remote in recipe.files:
            sources = remote.urls if source is None else (_source_for(remote, source, len(recipe.files)),)
            for k, where in enumerate(sources):
                try:
                    path = download(where, downloads / remote.filename,
                                    sha256=overrides.get(remote.filename, remote.sha256),
                                    md5=None if remote.filename in overrides else remote.md5, progress=progress,
                                    allow_unverified=allow_unverified)
                    break
                except (OSError, TimeoutError) as exc:   # unreachable, refused, cut off: the next mirror
                    if k == len(sources) - 1:
                        raise
                    print(f"{remote.filename}: {where} failed ({type(exc).__name__}: {exc}); "
                          f"trying {sources[k + 1]}", file=sys.stderr)
            target = raw / f"{remote.filename}.contents"
            if _is_archive(remote.filename):
                safe_extract(path, target, overwrite=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / remote.filename)
        raw_input = raw
    with atomic_directory(out) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        summary = recipe.convert(Path(raw_input), tmp)
        manifest = {"recipe": name, "title": recipe.title, "homepage": recipe.homepage, "classes": list(recipe.classes),
                    "ignore_index": IGNORE_INDEX, **summary}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out


@dataclass(frozen=True)
class UrlCheck:
    """What one recipe URL answered (:func:`check_urls`)."""

    recipe: str
    what: str          # the file name, or "homepage"
    url: str
    ok: bool
    detail: str        # "HTTP 200, 1999639040 bytes, application/x-tar" or the error


def _ask(url: str, timeout: float) -> tuple[int, dict]:
    """``(status, headers)`` for a HEAD request, or a one-byte ranged GET where HEAD is refused."""
    import urllib.error
    import urllib.request

    headers = {"User-Agent": "segcourse-check-urls"}
    for method, extra in (("HEAD", {}), ("GET", {"Range": "bytes=0-0"})):
        request = urllib.request.Request(url, method=method, headers={**headers, **extra})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if method == "GET":
                    response.read(1)
                return response.status, dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            if method == "HEAD" and exc.code in (403, 405, 501):
                continue
            return exc.code, dict(exc.headers.items()) if exc.headers else {}
    raise AssertionError("unreachable")


def check_urls(recipes: Mapping[str, Recipe] | None = None, timeout: float = 20.0) -> list[UrlCheck]:
    """Ask every URL of every recipe (files, their mirrors, homepages) whether it still serves what it should.

    A file URL passes when it answers 200 (or 206 to a ranged GET), is not an HTML page (what a firewall or a
    login wall sends instead), and, where the recipe records the file's size, announces that size. A homepage
    passes on any 2xx. Nothing is downloaded: a HEAD request, or a one-byte ranged GET where HEAD is refused.
    Proxies come from the environment (``https_proxy``...) as for downloads.

    Args:
        recipes: default :data:`RECIPES`.
        timeout: seconds per request.
    """
    import urllib.parse

    out = []
    for name, recipe in (RECIPES if recipes is None else recipes).items():
        targets = [("homepage", recipe.homepage, None)]
        targets += [(remote.filename, url, remote) for remote in recipe.files for url in remote.urls]
        for what, url, remote in targets:
            if urllib.parse.urlparse(url).scheme not in ("http", "https"):
                out.append(UrlCheck(name, what, url, False, "not an http(s) URL"))
                continue
            try:
                status, headers = _ask(url, timeout)
            except (OSError, ValueError) as exc:
                out.append(UrlCheck(name, what, url, False, f"{type(exc).__name__}: {exc}"))
                continue
            headers = {k.lower(): v for k, v in headers.items()}
            kind = headers.get("content-type", "?").split(";")[0]
            length = headers.get("content-length")
            if status == 206 and "/" in headers.get("content-range", ""):
                length = headers["content-range"].rsplit("/", 1)[1]
            detail = f"HTTP {status}, {length or '?'} bytes, {kind}"
            ok = 200 <= status < 300
            if ok and remote is not None:
                if kind == "text/html":
                    ok, detail = False, detail + ": an HTML page, not the file"
                elif remote.size is not None and length and length.isdigit() and int(length) != remote.size:
                    ok, detail = False, detail + f": expected {remote.size} bytes"
            out.append(UrlCheck(name, what, url, ok, detail))
    return out


def check_urls_main(argv: Sequence[str] | None = None) -> int:
    """``python -m segcourse data check-urls [NAME ...] [--timeout S]``: one line per URL; exit 1 if any fails."""
    parser = argparse.ArgumentParser(prog="python -m segcourse data check-urls",
                                     description="Ask every recipe URL (files, mirrors, homepages) whether it still "
                                                 "serves the file; needs the internet (not run in CI).")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"recipes to check (default: all of {', '.join(sorted(RECIPES))})")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(sorted(RECIPES))}")
    chosen = {n: RECIPES[n] for n in (args.names or RECIPES)}
    results = check_urls(chosen, timeout=args.timeout)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'}  {r.recipe:<24} {r.what:<28} {r.url}\n      {r.detail}")
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} of {len(results)} URLs answer as expected"
          + (f"; {len(failed)} do not (a file whose every URL fails needs a new mirror with the same checksum)"
             if failed else ""))
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m segcourse data prepare NAME [--source S] [--root R] [--sha256 FILE=HEX ...] [--force]``."""
    parser = argparse.ArgumentParser(prog="python -m segcourse data prepare",
                                     description="Download and convert a real dataset into the course's folder format.")
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--source", help="folder, archive or URL to take the files from instead of the publisher's")
    parser.add_argument("--root", help="data folder (default: segcourse's data root)")
    parser.add_argument("--sha256", action="append", default=[], metavar="FILE=HEX",
                        help="pin or override a file's SHA-256 (repeatable)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the dataset is already converted")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="download a file that has no checksum over the network anyway (it is refused otherwise)")
    args = parser.parse_args(argv)
    pins = {}
    for item in args.sha256:
        if "=" not in item:
            parser.error(f"--sha256 expects FILE=HEX, got {item!r}")
        key, value = item.split("=", 1)
        pins[key] = value
    try:
        out = prepare(args.name, root=args.root, source=args.source, sha256=pins, force=args.force,
                      allow_unverified=args.allow_unverified)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: ready in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
