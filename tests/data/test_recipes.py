"""Real-dataset recipes, offline: tiny fixtures in each dataset's ORIGINAL layout, served from local
paths and file:// URLs, plus the safety rules (checksums, interrupted downloads, hostile archives)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcourse.constants import IGNORE_INDEX
from segcourse.data import download as dl
from segcourse.data import recipes
from segcourse.data.download import (
    ChecksumError,
    IncompleteDownloadError,
    UnsafeArchiveError,
    UnverifiedDownloadError,
    UnverifiedDownloadWarning,
    download,
    file_digest,
    safe_extract,
)
from segcourse.data.recipes import RECIPES, prepare, read_split

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------------ fixture builders
def _png(array, mode=None) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(array)
    if mode == "P":
        image.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    image.save(buf, format="PNG")
    return buf.getvalue()


def _jpg(h, w) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _tar(path: Path, members: dict[str, bytes], mode="w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _mode(path: Path) -> str:
    with Image.open(path) as image:
        return image.mode


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


TRIMAP = np.array([[2, 2, 2, 2, 2, 2],
                   [2, 3, 3, 3, 3, 2],
                   [2, 3, 1, 1, 3, 2],
                   [2, 3, 1, 1, 3, 2],
                   [2, 3, 3, 3, 3, 2]], np.uint8)


@pytest.fixture
def pet_source(tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    _tar(src / "images.tar.gz", {"images/Abyssinian_1.jpg": _jpg(5, 6), "images/beagle_7.jpg": _jpg(5, 6),
                                 "images/Abyssinian_100.mat": b"stray file the real archive ships"})
    _tar(src / "annotations.tar.gz", {
        "annotations/trimaps/Abyssinian_1.png": _png(TRIMAP),
        "annotations/trimaps/._Abyssinian_1.png": b"\x00\x05\x16\x07 macOS resource fork",
        "annotations/trimaps/beagle_7.png": _png(TRIMAP[::-1].copy()),
        "annotations/trainval.txt": b"Abyssinian_1 1 1 1\n",
        "annotations/test.txt": b"beagle_7 13 2 5\n",
        "annotations/xmls/Abyssinian_1.xml": b"<annotation/>"})
    pins = {f: _sha(src / f) for f in ("images.tar.gz", "annotations.tar.gz")}
    return src, pins


# ------------------------------------------------------------------------------------- Oxford-IIIT Pet
def test_oxford_pet_trimaps_become_classes_with_ignored_border(tmp_path, pet_source):
    src, pins = pet_source
    out = prepare("oxford_pet", root=tmp_path / "data", source=src, sha256=pins, progress=False)
    mask = _load(out / "masks" / "Abyssinian_1.png")
    want = np.select([TRIMAP == 1, TRIMAP == 2], [1, 0], IGNORE_INDEX)     # 1 pet, 2 background, 3 border
    assert np.array_equal(mask, want)
    assert _mode(out / "masks" / "Abyssinian_1.png") == "P"
    # the JPEG is copied byte for byte, not re-compressed
    with tarfile.open(src / "images.tar.gz") as tf:
        original = tf.extractfile("images/Abyssinian_1.jpg").read()
    assert (out / "images" / "Abyssinian_1.jpg").read_bytes() == original
    assert read_split(out, "train") == ["Abyssinian_1"] and read_split(out, "test") == ["beagle_7"]
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["count"] == 2 and manifest["classes"] == ["background", "pet"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["Abyssinian_1.png", "beagle_7.png"]


def test_pet_served_over_file_url_and_not_rebuilt(tmp_path, pet_source):
    src, pins = pet_source
    root = tmp_path / "data"
    out = prepare("oxford_pet", root=root, source=src.as_uri(), sha256=pins, progress=False)
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert prepare("oxford_pet", root=root, source="/nonexistent", progress=False) == out   # complete: no work
    assert (out / "dataset.json").stat().st_mtime_ns == stamp


def test_pet_real_md5_rejects_fixture_and_leaves_nothing(tmp_path, pet_source):
    src, _ = pet_source
    root = tmp_path / "data"
    with pytest.raises(ChecksumError, match="MD5 mismatch"):        # the recipe's real torchvision MD5
        prepare("oxford_pet", root=root, source=src, progress=False)
    assert not (root / "oxford_pet").exists()
    assert not list(root.rglob("*.tmp")) and not list((root / "_downloads").rglob("*.tar.gz"))


def test_wrong_sha256_leaves_nothing(tmp_path, pet_source):
    src, pins = pet_source
    root = tmp_path / "data"
    pins["annotations.tar.gz"] = "0" * 64
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        prepare("oxford_pet", root=root, source=src, sha256=pins, progress=False)
    assert not (root / "oxford_pet").exists()
    assert not (root / "_downloads" / "oxford_pet" / "annotations.tar.gz").exists()
    assert not list(root.rglob("*.tmp"))


def test_sha256_override_for_unknown_file_is_rejected(tmp_path, pet_source):
    src, _ = pet_source
    with pytest.raises(ValueError, match="does not download"):
        prepare("oxford_pet", root=tmp_path, source=src, sha256={"imgs.tgz": "0" * 64})


def test_corrupt_archive_with_matching_hash_fails_cleanly(tmp_path, pet_source):
    src, pins = pet_source
    good = (src / "annotations.tar.gz").read_bytes()
    (src / "annotations.tar.gz").write_bytes(good[: len(good) // 2])     # truncated, then "pinned"
    pins["annotations.tar.gz"] = _sha(src / "annotations.tar.gz")
    root = tmp_path / "data"
    with pytest.raises(ValueError, match="corrupt or truncated"):
        prepare("oxford_pet", root=root, source=src, sha256=pins, progress=False)
    assert not (root / "oxford_pet").exists()
    assert not (root / "_raw" / "oxford_pet" / "annotations.tar.gz.contents").exists()


def test_bad_trimap_value_names_the_file(tmp_path, pet_source):
    src, _ = pet_source
    bad = TRIMAP.copy()
    bad[0, 0] = 4
    _tar(src / "annotations.tar.gz", {"annotations/trimaps/Abyssinian_1.png": _png(bad)})
    pins = {f: _sha(src / f) for f in ("images.tar.gz", "annotations.tar.gz")}
    with pytest.raises(ValueError, match=r"Abyssinian_1\.png.*\[4\]"):
        prepare("oxford_pet", root=tmp_path / "data", source=src, sha256=pins, progress=False)
    assert not (tmp_path / "data" / "oxford_pet").exists()
    assert not list((tmp_path / "data").glob(".*tmp*"))  # no temporary conversion folder left behind


# ------------------------------------------------------------------------------------------ ISBI 2012
def _tif_stack(path, pages):
    images = [Image.fromarray(p) for p in pages]
    images[0].save(path, save_all=True, append_images=images[1:])


def test_isbi_stacks_split_into_slices(tmp_path):
    src = tmp_path / "isbi"
    src.mkdir()
    volume = [RNG.integers(0, 255, (8, 10), dtype=np.uint8) for _ in range(9)]
    labels = [np.where(RNG.random((8, 10)) < 0.3, 0, 255).astype(np.uint8) for _ in range(9)]
    _tif_stack(src / "train-volume.tif", volume)
    _tif_stack(src / "train-labels.tif", labels)
    with pytest.warns(UnverifiedDownloadWarning, match="SHA-256 is"):        # no published checksum: loud
        out = prepare("isbi2012", root=tmp_path / "data", source=src, progress=False)
    assert sorted(p.stem for p in (out / "masks").iterdir()) == [f"slice_{k:02d}" for k in range(9)]
    for k in range(9):
        assert np.array_equal(_load(out / "images" / f"slice_{k:02d}.png"), volume[k])
        assert np.array_equal(_load(out / "masks" / f"slice_{k:02d}.png"), labels[k] == 0)
    # labels: 255 = cell -> 0, 0 = membrane -> 1; the last 6 slices (default) are held out as val
    assert read_split(out, "train") == ["slice_00", "slice_01", "slice_02"]
    assert len(read_split(out, "val")) == 6


def test_isbi_val_split_is_the_last_slices(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    _tif_stack(raw / "train-volume.tif", [np.full((4, 4), k, np.uint8) for k in range(8)])
    _tif_stack(raw / "train-labels.tif", [np.full((4, 4), 255, np.uint8)] * 8)
    summary = recipes.convert_isbi2012(raw, out, val_slices=3)
    assert summary["splits"] == {"train": 5, "val": 3}
    assert read_split(out, "val") == ["slice_05", "slice_06", "slice_07"]


def test_isbi_mismatched_stacks(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    _tif_stack(raw / "train-volume.tif", [np.zeros((4, 4), np.uint8)] * 3)
    _tif_stack(raw / "train-labels.tif", [np.zeros((4, 4), np.uint8)] * 2)
    with pytest.raises(ValueError, match="3 slices but train-labels.tif has 2"):
        recipes.convert_isbi2012(raw, out, val_slices=1)


# ---------------------------------------------------------------------------- Massachusetts Buildings
def _mass_tile(h=6, w=7):
    photo = RNG.integers(0, 200, (h, w, 3), dtype=np.uint8)
    photo[0, :3] = 255                                   # blank (outside the survey) -> ignore
    label = np.zeros((h, w), np.uint8)
    label[2:4, 2:5] = 255
    return photo, label


@pytest.mark.parametrize("layout", ["toronto", "kaggle-zip"])
def test_massachusetts_layouts(tmp_path, layout):
    photo, label = _mass_tile()
    if layout == "toronto":
        src = tmp_path / "mass_buildings"
        for split in ("train", "valid"):
            (src / split / "sat").mkdir(parents=True)
            (src / split / "map").mkdir(parents=True)
            Image.fromarray(photo).save(src / split / "sat" / f"2267{split}_15.tiff")
            Image.fromarray(np.stack([label] * 3, -1)).save(src / split / "map" / f"2267{split}_15.tif")  # RGB map
    else:
        src = tmp_path / "archive.zip"
        with zipfile.ZipFile(src, "w") as zf:
            for split in ("train", "val"):
                for folder, array, ext in ((split, photo, "tiff"), (f"{split}_labels", label, "tif")):
                    buf = io.BytesIO()
                    Image.fromarray(array).save(buf, format="TIFF")
                    zf.writestr(f"tiff/{folder}/2267{split}_15.{ext}", buf.getvalue())
    out = prepare("massachusetts_buildings", root=tmp_path / "data", source=src, progress=False)
    stem = read_split(out, "train")[0]
    mask = _load(out / "masks" / f"{stem}.png")
    want = (label > 127).astype(np.uint8)
    want[0, :3] = IGNORE_INDEX
    assert np.array_equal(mask, want)
    assert len(read_split(out, "val")) == 1
    assert np.array_equal(_load(out / "images" / f"{stem}.png"), photo)


def test_massachusetts_needs_a_source_and_reports_orphans(tmp_path):
    with pytest.raises(ValueError, match="with --source"):
        prepare("massachusetts_buildings", root=tmp_path / "data")
    src = tmp_path / "m"
    (src / "train" / "sat").mkdir(parents=True)
    (src / "train" / "map").mkdir(parents=True)
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(src / "train" / "sat" / "a.tiff")
    with pytest.raises(ValueError, match=r"a\.tiff: aerial photo without a building map"):
        prepare("massachusetts_buildings", root=tmp_path / "data", source=src)
    assert not (tmp_path / "data" / "massachusetts_buildings").exists()


# ------------------------------------------------------------------------------------ Pascal VOC 2012
def _voc_tar(path, mask_mode="P"):
    mask = np.zeros((5, 6), np.uint8)
    mask[1:4, 1:5] = IGNORE_INDEX          # VOC's border ...
    mask[2, 2:4] = 15                      # ... around a person
    members = {"VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg": _jpg(5, 6),
               "VOCdevkit/VOC2012/JPEGImages/2007_000033.jpg": _jpg(5, 6),
               "VOCdevkit/VOC2012/SegmentationClass/2007_000032.png": _png(mask, "P") if mask_mode == "P" else
               _png(np.stack([mask] * 3, -1)),
               "VOCdevkit/VOC2012/SegmentationClass/2007_000033.png": _png(np.zeros((5, 6), np.uint8), "P"),
               "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt": b"2007_000032\n",
               "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt": b"2007_000033\n"}
    return _tar(path, members, mode="w"), mask


def test_voc_palette_indices_and_border_kept(tmp_path):
    archive, mask = _voc_tar(tmp_path / "VOCtrainval_11-May-2012.tar")
    out = prepare("voc2012", root=tmp_path / "data", source=archive.as_uri(),
                  sha256={"VOCtrainval_11-May-2012.tar": _sha(archive)}, progress=False)
    got = Image.open(out / "masks" / "2007_000032.png")
    assert got.mode == "P" and np.array_equal(np.asarray(got), mask)
    assert got.getpalette()[3 * 15:3 * 15 + 3] == [192, 128, 128]        # VOC's colour for 'person'
    assert read_split(out, "train") == ["2007_000032"] and read_split(out, "val") == ["2007_000033"]


def test_voc_rgb_mask_is_refused(tmp_path):
    archive, _ = _voc_tar(tmp_path / "VOCtrainval_11-May-2012.tar", mask_mode="RGB")
    with pytest.raises(ValueError, match="expected a palette"):
        prepare("voc2012", root=tmp_path / "data", source=archive,
                sha256={"VOCtrainval_11-May-2012.tar": _sha(archive)}, progress=False)


def test_voc_palette_matches_devkit():
    palette = recipes._voc_palette(21)
    assert palette[:4] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    assert palette[20] == (0, 64, 128)


# --------------------------------------------------------------------------------- download safety
def test_download_file_url_and_local_path(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"hello" * 1000)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    got = download(src.as_uri(), tmp_path / "out" / "a.bin", sha256=digest, progress=False)
    assert got.read_bytes() == src.read_bytes()
    src.write_bytes(b"changed")                         # already there and verified: not fetched again
    assert download(src, got, sha256=digest, progress=False).read_bytes() == b"hello" * 1000


def test_download_without_checksum_warns_loudly(tmp_path, capsys):
    src = tmp_path / "a.bin"
    src.write_bytes(b"x")
    with pytest.warns(UnverifiedDownloadWarning):
        download(src, tmp_path / "b.bin", progress=False)
    err = capsys.readouterr().err
    assert hashlib.sha256(b"x").hexdigest() in err and "--sha256 b.bin=" in err


class _DroppingStream(io.BytesIO):
    """Delivers some bytes, then the connection drops."""

    def read(self, n=-1):
        if self.tell() >= 3:
            raise ConnectionResetError("connection reset by peer")
        return super().read(3)


@pytest.mark.parametrize("stream, expected, error", [
    (lambda: _DroppingStream(b"abcdefgh"), 8, ConnectionResetError),     # dropped mid-transfer
    (lambda: io.BytesIO(b"abc"), 10, IncompleteDownloadError),           # fewer bytes than Content-Length
])
def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch, stream, expected, error):
    monkeypatch.setattr(dl, "_open_source", lambda source, timeout: (stream(), expected))
    dest = tmp_path / "d" / "big.tar"
    with pytest.raises(error):
        download("http://example.invalid/big.tar", dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and not dest.with_name("big.tar.part").exists()


def test_bad_checksum_strings():
    with pytest.raises(ValueError, match="64 hex digits"):
        download("x", "y", sha256="abc")
    with pytest.raises(TypeError):
        download("x", "y", sha256=123)


# ------------------------------------------------------------------------------------ extraction safety
def _tar_with(path, member: tarfile.TarInfo, data: bytes = b""):
    with tarfile.open(path, "w") as tf:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        member.size = len(data) if member.isfile() else 0
        tf.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _link(name, target, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize("member, reason", [
    (tarfile.TarInfo("../escape.txt"), "'..' component"),
    (tarfile.TarInfo("/tmp/segcourse_abs.txt"), "absolute path"),
    (tarfile.TarInfo("a/../../escape.txt"), "'..' component"),
    (_link("innocent", "../../outside", tarfile.SYMTYPE), "outside"),
    (_link("etc", "/etc/passwd", tarfile.SYMTYPE), "absolute"),
    (_link("hard", "../outside", tarfile.LNKTYPE), "outside"),
    (_link("dev", "", tarfile.CHRTYPE), "device"),
])
def test_tar_members_cannot_escape(tmp_path, member, reason):
    archive = _tar_with(tmp_path / "evil.tar", member, b"pwned" if member.isfile() else b"")
    dest = tmp_path / "box" / "dest"
    with pytest.raises(UnsafeArchiveError, match=reason):
        safe_extract(archive, dest)
    assert not dest.exists()
    assert not (tmp_path / "box").exists() or not any((tmp_path / "box").iterdir())   # temp folder removed
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "box" / "escape.txt").exists()


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "C:/windows.txt", "ok/../../escape.txt"])
def test_zip_members_cannot_escape(tmp_path, name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", b"ok")
        zf.writestr(zipfile.ZipInfo(name), b"pwned")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, tmp_path / "box" / "dest")
    assert not (tmp_path / "box" / "dest").exists() and not (tmp_path / "escape.txt").exists()


def test_zip_symlink_out_of_folder_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("link")
    info.external_attr = (0o120777 << 16)                # a symlink, as Info-ZIP stores it
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "../../etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, tmp_path / "dest")


def test_safe_extract_good_archive_and_no_overwrite(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", {"a/b.txt": b"1", "c.txt": b"2"})
    dest = safe_extract(archive, tmp_path / "dest")
    assert (dest / "a" / "b.txt").read_bytes() == b"1"
    with pytest.raises(FileExistsError):
        safe_extract(archive, dest)
    safe_extract(archive, dest, overwrite=True)


def test_corrupt_archive(tmp_path):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08 this is not really gzip")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


# ------------------------------------------------------------------------------------ CLI and table
def test_cli_pins_sha256_and_reports_errors(tmp_path, pet_source, capsys):
    src, pins = pet_source
    args = ["oxford_pet", "--root", str(tmp_path / "data"), "--source", str(src)]
    assert recipes.main(args + ["--sha256", "images.tar.gz=" + "1" * 64]) == 1
    assert "SHA-256 mismatch" in capsys.readouterr().err
    pinned = [a for f, h in pins.items() for a in ("--sha256", f"{f}={h}")]
    assert recipes.main(args + pinned) == 0
    assert "ready" in capsys.readouterr().out


def test_recipe_table_is_honest():
    for recipe in RECIPES.values():
        assert recipe.homepage.startswith("http") and recipe.classes
        assert recipe.manual or recipe.files
        for remote in recipe.files:
            assert remote.url.startswith("http")
            assert remote.sha256 is None or len(remote.sha256) == 64
            assert remote.md5 is None or len(remote.md5) == 32
    with pytest.raises(ValueError, match="available"):
        recipes.get_recipe("cityscapes")


def test_unverified_recipe_file_warns(tmp_path, pet_source, monkeypatch):
    src, _ = pet_source
    stripped = dataclasses.replace(RECIPES["oxford_pet"], files=tuple(
        dataclasses.replace(f, md5=None) for f in RECIPES["oxford_pet"].files))
    monkeypatch.setitem(RECIPES, "oxford_pet", stripped)
    with pytest.warns(UnverifiedDownloadWarning):
        out = prepare("oxford_pet", root=tmp_path / "data", source=src, progress=False)
    assert file_digest(tmp_path / "data" / "_downloads" / "oxford_pet" / "images.tar.gz") == _sha(src / "images.tar.gz")
    assert (out / "dataset.json").is_file()


def test_atomic_directory_replaces_on_success_and_leaves_dest_on_failure(tmp_path):
    from segcourse.files import atomic_directory

    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(dest) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("interrupted")
    assert [p.name for p in dest.iterdir()] == ["old.txt"]
    with atomic_directory(dest) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in dest.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left


# ------------------------------------------------------------------------------------ unverified network downloads
def _serve(monkeypatch, data: bytes) -> list[str]:
    """Pretend every URL serves ``data``; returns the list of URLs actually opened."""
    opened = []

    def fake_open(source, timeout):
        opened.append(str(source))
        return io.BytesIO(data), len(data)

    monkeypatch.setattr(dl, "_open_source", fake_open)
    return opened


def test_network_download_without_checksum_needs_an_explicit_flag(tmp_path, monkeypatch, capsys):
    opened = _serve(monkeypatch, b"payload")
    dest = tmp_path / "d" / "train-volume.tif"
    with pytest.raises(UnverifiedDownloadError, match=r"no checksum .*--sha256 train-volume.tif=HEX.*--allow-unverified"):
        download("http://example.invalid/train-volume.tif", dest, progress=False)
    assert opened == [] and not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    with pytest.warns(UnverifiedDownloadWarning):
        download("http://example.invalid/train-volume.tif", dest, progress=False, allow_unverified=True)
    assert dest.read_bytes() == b"payload" and hashlib.sha256(b"payload").hexdigest() in capsys.readouterr().err
    # with a checksum no flag is needed (and no warning)
    other = tmp_path / "d" / "pinned.tif"
    download("https://example.invalid/pinned.tif", other, sha256=hashlib.sha256(b"payload").hexdigest(), progress=False)
    assert other.read_bytes() == b"payload"


def test_isbi_recipe_refuses_an_unchecked_http_download_unless_allowed(tmp_path, monkeypatch):
    assert all(f.url.startswith("http://") and f.sha256 is None and f.md5 is None for f in RECIPES["isbi2012"].files)
    _tif_stack(tmp_path / "stack.tif", [np.full((4, 4), 255, np.uint8)] * 8)
    opened = _serve(monkeypatch, (tmp_path / "stack.tif").read_bytes())
    with pytest.raises(UnverifiedDownloadError):
        prepare("isbi2012", root=tmp_path / "data", progress=False)
    assert opened == [] and not (tmp_path / "data" / "isbi2012").exists()
    assert recipes.main(["isbi2012", "--root", str(tmp_path / "data")]) == 1           # the CLI reports it
    with pytest.warns(UnverifiedDownloadWarning):
        out = prepare("isbi2012", root=tmp_path / "data", progress=False, allow_unverified=True)
    assert len(opened) == 2 and (out / "dataset.json").is_file()


def test_isbi_recipe_cli_flag(tmp_path, monkeypatch, capsys):
    _tif_stack(tmp_path / "stack.tif", [np.full((4, 4), 255, np.uint8)] * 8)
    _serve(monkeypatch, (tmp_path / "stack.tif").read_bytes())
    assert recipes.main(["isbi2012", "--root", str(tmp_path / "data")]) == 1
    assert "--allow-unverified" in capsys.readouterr().err
    with pytest.warns(UnverifiedDownloadWarning):
        assert recipes.main(["isbi2012", "--root", str(tmp_path / "data"), "--allow-unverified"]) == 0


# ------------------------------------------------------------------------------------- hosts and mirrors
def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]   # nothing listens there once the socket is closed


def test_a_download_that_cannot_reach_the_publisher_tries_the_mirrors(tmp_path, pet_source, monkeypatch, capsys):
    src, pins = pet_source
    dead = f"http://127.0.0.1:{_closed_port()}/pets"
    moved = dataclasses.replace(RECIPES["oxford_pet"], files=tuple(
        dataclasses.replace(f, url=f"{dead}/{f.filename}", mirrors=((src / f.filename).as_uri(),))
        for f in RECIPES["oxford_pet"].files))
    monkeypatch.setitem(RECIPES, "oxford_pet", moved)
    out = prepare("oxford_pet", root=tmp_path / "data", sha256=pins, progress=False)
    assert (out / "dataset.json").is_file()
    assert f"images.tar.gz: {dead}/images.tar.gz failed" in capsys.readouterr().err


def test_a_mirror_is_not_tried_after_a_checksum_mismatch(tmp_path, pet_source, monkeypatch):
    src, _ = pet_source
    other = tmp_path / "other"
    other.mkdir()
    moved = dataclasses.replace(RECIPES["oxford_pet"], files=tuple(   # the real MD5s: the fixture fails them
        dataclasses.replace(f, url=(src / f.filename).as_uri(), mirrors=((other / f.filename).as_uri(),))
        for f in RECIPES["oxford_pet"].files))
    monkeypatch.setitem(RECIPES, "oxford_pet", moved)
    with pytest.raises(ChecksumError, match="MD5 mismatch"):
        prepare("oxford_pet", root=tmp_path / "data", progress=False)


def test_the_recipes_use_the_hosts_upstream_moved_to():
    """keras-io#1200 (pets), pytorch/vision#9269/#9271 (VOC): the old addresses are only the last mirrors."""
    pet, voc = RECIPES["oxford_pet"], RECIPES["voc2012"]
    assert all(f.url.startswith("https://thor.robots.ox.ac.uk/datasets/pets/") for f in pet.files)
    assert voc.files[0].url == "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
    assert voc.files[0].md5 == "6cd6e144f989b92b3379bac3b3de84fd"   # torchvision's pin: the same file
    assert voc.files[0].mirrors[-1].startswith("http://host.robots.ox.ac.uk/")


@pytest.fixture
def local_server():
    """An HTTP server on 127.0.0.1 in a thread: /file.tar (HEAD ok), /nohead.tar (HEAD refused, ranged GET
    answered), /page.tar (an HTML page), /short.tar (a wrong size), anything else 404."""
    import http.server
    import threading

    body = b"x" * 100

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, with_body: bool):
            if self.path == "/nohead.tar" and self.command == "HEAD":
                self.send_error(405)
                return
            if self.path not in ("/file.tar", "/nohead.tar", "/page.tar", "/short.tar", "/"):
                self.send_error(404)
                return
            ranged = self.headers.get("Range") == "bytes=0-0"
            html = self.path in ("/page.tar", "/")
            data = body[:50] if self.path == "/short.tar" else body
            self.send_response(206 if ranged else 200)
            self.send_header("Content-Type", "text/html" if html else "application/x-tar")
            if ranged:
                self.send_header("Content-Range", f"bytes 0-0/{len(data)}")
                self.send_header("Content-Length", "1")
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if with_body:
                self.wfile.write(data[:1] if ranged else data)

        def do_HEAD(self):
            self._answer(False)

        def do_GET(self):
            self._answer(True)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_check_urls_asks_every_url_and_flags_what_is_not_the_file(local_server, capsys, monkeypatch):
    base = local_server
    recipe = dataclasses.replace(RECIPES["oxford_pet"], homepage=f"{base}/", files=(
        recipes.RemoteFile("a.tar", f"{base}/file.tar", md5="0" * 32, size=100,
                           mirrors=(f"{base}/nohead.tar", f"{base}/page.tar", f"{base}/short.tar",
                                    f"{base}/gone.tar", f"http://127.0.0.1:{_closed_port()}/a.tar")),))
    results = recipes.check_urls({"pets": recipe}, timeout=5)
    verdicts = {(r.what, r.url.rsplit("/", 1)[1] if r.what != "homepage" else ""): (r.ok, r.detail) for r in results}
    assert verdicts[("homepage", "")] == (True, "HTTP 200, 100 bytes, text/html")     # a page is fine there
    assert verdicts[("a.tar", "file.tar")] == (True, "HTTP 200, 100 bytes, application/x-tar")
    assert verdicts[("a.tar", "nohead.tar")] == (True, "HTTP 206, 100 bytes, application/x-tar")  # ranged GET
    assert verdicts[("a.tar", "page.tar")][0] is False and "an HTML page" in verdicts[("a.tar", "page.tar")][1]
    assert verdicts[("a.tar", "short.tar")] == (False, "HTTP 200, 50 bytes, application/x-tar: expected 100 bytes")
    assert verdicts[("a.tar", "gone.tar")][0] is False and verdicts[("a.tar", "gone.tar")][1].startswith("HTTP 404")
    assert "URLError" in verdicts[("a.tar", "a.tar")][1] and len(results) == 7
    monkeypatch.setattr(recipes, "RECIPES", {"pets": recipe})
    assert recipes.check_urls_main(["--timeout", "5"]) == 1
    printed = capsys.readouterr().out
    assert "3 of 7 URLs answer as expected; 4 do not" in printed and printed.count("FAIL") == 4
