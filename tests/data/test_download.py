"""safe_extract on Pythons without tarfile's extraction filters, and the limits against archive bombs."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from segcourse.data import download as dl
from segcourse.data.download import ArchiveTooLargeError, UnsafeArchiveError, check_archive_members, safe_extract


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"", *, kind=tarfile.REGTYPE, mode=0o644, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _rich_tar(path: Path) -> Path:
    """Folders, files, an executable, a setuid file, and a symlink and a hard link that stay inside."""
    with tarfile.open(path, "w:gz") as tf:
        _add(tf, "pkg", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "pkg/data.txt", b"payload")
        _add(tf, "pkg/run.sh", b"#!/bin/sh\n", mode=0o755)
        _add(tf, "pkg/suid", b"x", mode=0o4755)
        _add(tf, "pkg/sub/deep.txt", b"deep")                     # its folder has no member of its own
        _add(tf, "pkg/alias", kind=tarfile.SYMTYPE, link="data.txt")
        _add(tf, "pkg/copy", kind=tarfile.LNKTYPE, link="pkg/data.txt")
    return path


@pytest.fixture
def old_python(monkeypatch):
    """Simulate Python < 3.10.12 / 3.11.4: no tarfile.data_filter, and extractall() rejects filter=."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    original = tarfile.TarFile.extractall

    def extractall(self, path=".", members=None, *, numeric_owner=False, **kwargs):
        if "filter" in kwargs:
            raise TypeError("extractall() got an unexpected keyword argument 'filter'")
        return original(self, path, members, numeric_owner=numeric_owner, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extractall", extractall)
    assert not dl._has_extraction_filters()


def test_without_extraction_filters_members_are_written_by_our_own_loop(tmp_path, old_python):
    dest = safe_extract(_rich_tar(tmp_path / "ok.tar.gz"), tmp_path / "dest")
    assert (dest / "pkg" / "data.txt").read_bytes() == b"payload"
    assert (dest / "pkg" / "sub" / "deep.txt").read_bytes() == b"deep"
    assert (dest / "pkg" / "copy").read_bytes() == b"payload"
    assert (dest / "pkg" / "alias").is_symlink() and (dest / "pkg" / "alias").read_bytes() == b"payload"
    suid = os.stat(dest / "pkg" / "suid").st_mode
    assert not suid & (stat.S_ISUID | stat.S_ISGID)                     # setuid never restored
    if os.name == "posix":
        assert os.stat(dest / "pkg" / "run.sh").st_mode & stat.S_IXUSR
        assert not os.stat(dest / "pkg" / "data.txt").st_mode & stat.S_IXUSR


def test_without_extraction_filters_unsafe_members_are_still_refused(tmp_path, old_python):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        _add(tf, "fine.txt", b"ok")
        _add(tf, "link", kind=tarfile.SYMTYPE, link="../../outside")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_the_data_filter_is_used_where_this_python_has_it(tmp_path, monkeypatch):
    seen = []
    original = tarfile.TarFile.extractall

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("filter"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extractall", spy)
    dest = safe_extract(_rich_tar(tmp_path / "ok.tar.gz"), tmp_path / "dest")
    assert seen == (["data"] if dl._has_extraction_filters() else [])        # else: our own loop, no extractall
    assert (dest / "pkg" / "copy").read_bytes() == b"payload"


# ------------------------------------------------------------------------------------ archive bombs
def _many(path: Path, count: int, size: int) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for i in range(count):
            _add(tf, f"f{i}.bin", b"\0" * size)
    return path


def test_member_count_limit(tmp_path):
    archive = _many(tmp_path / "many.tar.gz", 5, 1)
    with pytest.raises(ArchiveTooLargeError, match=r"more than 4 members .*max_members="):
        safe_extract(archive, tmp_path / "dest", max_members=4)
    assert not (tmp_path / "dest").exists() and [p.name for p in tmp_path.iterdir()] == ["many.tar.gz"]
    assert len(list(safe_extract(archive, tmp_path / "dest", max_members=5).iterdir())) == 5


def test_total_size_limit_counts_uncompressed_bytes(tmp_path):
    archive = _many(tmp_path / "big.tar.gz", 4, 25_000)             # 100 kB of zeros, a few hundred bytes on disk
    assert archive.stat().st_size < 5_000
    with pytest.raises(ArchiveTooLargeError, match=r"more than 99,999 bytes .*max_total_bytes="):
        safe_extract(archive, tmp_path / "dest", max_total_bytes=99_999)
    assert not (tmp_path / "dest").exists()
    safe_extract(archive, tmp_path / "dest", max_total_bytes=100_000)


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"zeros{i}.bin", b"\0" * 1_000_000)           # 3 MB that compress to a few kB
    assert archive.stat().st_size < 20_000
    with pytest.raises(ArchiveTooLargeError, match="bytes"):
        safe_extract(archive, tmp_path / "dest", max_total_bytes=2_000_000)
    with pytest.raises(ArchiveTooLargeError, match="members"):
        check_archive_members(archive, tmp_path / "dest", max_members=2)
    assert not (tmp_path / "dest").exists()


def test_default_limits_are_module_settings_read_at_call_time(tmp_path, monkeypatch):
    assert dl.MAX_MEMBERS >= 100_000 and dl.MAX_TOTAL_BYTES >= 16 * 1024 ** 3    # generous for real datasets
    archive = _many(tmp_path / "three.tar.gz", 3, 10)
    monkeypatch.setattr(dl, "MAX_MEMBERS", 2)
    with pytest.raises(ArchiveTooLargeError, match="more than 2 members"):
        safe_extract(archive, tmp_path / "dest")
    monkeypatch.setattr(dl, "MAX_MEMBERS", 3)
    monkeypatch.setattr(dl, "MAX_TOTAL_BYTES", 29)
    with pytest.raises(ArchiveTooLargeError, match="more than 29 bytes"):
        safe_extract(archive, tmp_path / "dest")
    monkeypatch.setattr(dl, "MAX_TOTAL_BYTES", 30)
    safe_extract(archive, tmp_path / "dest")


@pytest.mark.parametrize("kwargs", [{"max_members": -1}, {"max_total_bytes": 1.5}, {"max_members": True}])
def test_bad_limits(tmp_path, kwargs):
    with pytest.raises(ValueError, match="non-negative int"):
        safe_extract(_many(tmp_path / "a.tar.gz", 1, 1), tmp_path / "dest", **kwargs)
