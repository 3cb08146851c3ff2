"""Download, verify and extract dataset archives without ever leaving half-written files.

The real-dataset recipes (:mod:`segcourse.data.recipes`) fetch archives of a few hundred
megabytes to a few gigabytes. Three things go wrong in practice, and each has a rule here:

* **An interrupted or corrupt download.** Bytes are streamed to a hidden temporary file beside
  ``NAME`` (:func:`segcourse.files.atomic_path`); only when the transfer is complete (the size matches
  ``Content-Length`` when the server sends one) *and* the checksum matches is it renamed to ``NAME``
  with :func:`os.replace`, which is atomic on one file system. A failure deletes the temporary file,
  so ``NAME`` is either absent or complete and verified -- never truncated.
* **A wrong or unknown checksum.** SHA-256 is the check; an MD5 is accepted where that is all the
  dataset's publisher (or torchvision, which pins them) gives. A download over the network
  (http, https, ftp) with no checksum at all is refused (:class:`UnverifiedDownloadError`) unless
  you allow it explicitly (``allow_unverified=True``, ``--allow-unverified`` on the command line);
  then, and for a local file or ``file://`` URL without a checksum, it runs after a loud
  :class:`UnverifiedDownloadWarning` that prints the SHA-256 it computed so you can pin it
  (``--sha256`` on the command line).
* **An archive that writes outside its folder** ("zip slip", CVE-2007-4559 for tar): members with
  absolute paths, ``..`` components, drive letters, links pointing outside the target, device
  files. :func:`safe_extract` checks *every* member before writing anything, extracts into a
  temporary sibling folder, and renames it into place only when everything succeeded.
* **An archive bomb**: a few kilobytes that unpack to terabytes, or to millions of empty files.
  The sizes and the number of members are summed from the archive's index before anything is
  written and checked against :data:`MAX_TOTAL_BYTES` and :data:`MAX_MEMBERS` (generous for the
  course's datasets; raise them per call with ``max_total_bytes=`` / ``max_members=``).

On Python builds without PEP 706's extraction filters (``tarfile.data_filter`` arrived in 3.10.12
and 3.11.4, while the package supports every 3.10), tar members are written by our own loop, which
creates only regular files, folders and the checked links, with no owner, setuid or device bits.

Everything works with local paths and ``file://`` URLs, which is how the tests (and learners
who downloaded an archive with their browser) use it offline.

References:
    Python's ``tarfile`` extraction filters (PEP 706), https://peps.python.org/pep-0706/ ;
    the "Zip Slip" advisory, https://security.snyk.io/research/zip-slip-vulnerability .
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from ..files import atomic_directory, atomic_path

__all__ = [
    "ChecksumError", "IncompleteDownloadError", "UnsafeArchiveError", "UnverifiedDownloadError",
    "UnverifiedDownloadWarning", "ArchiveTooLargeError", "MAX_MEMBERS", "MAX_TOTAL_BYTES",
    "download", "file_digest", "safe_extract", "check_archive_members",
]

#: Default limit on the number of members of an archive (Pascal VOC 2012, the largest recipe, has
#: about 60,000); more is treated as an archive bomb. Pass ``max_members=`` to allow more.
MAX_MEMBERS: int = 500_000
#: Default limit on the total uncompressed size of an archive's members, in bytes (64 GiB; VOC 2012
#: unpacks to about 4 GB). Pass ``max_total_bytes=`` to allow more.
MAX_TOTAL_BYTES: int = 64 * 1024 ** 3

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """The downloaded bytes do not have the expected SHA-256 (or MD5)."""


class IncompleteDownloadError(OSError):
    """The transfer ended before ``Content-Length`` bytes arrived (connection dropped)."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder, or is a device/special file."""


class ArchiveTooLargeError(UnsafeArchiveError):
    """An archive declares more members or more uncompressed bytes than the limits allow (an archive bomb?)."""


class UnverifiedDownloadWarning(UserWarning):
    """A file was downloaded with no checksum to verify it against."""


class UnverifiedDownloadError(ValueError):
    """A network download with no checksum, and no explicit ``allow_unverified=True``."""


_NETWORK_SCHEMES = ("http", "https", "ftp")


def _is_network(source: str | os.PathLike) -> bool:
    return urllib.parse.urlparse(os.fspath(source)).scheme.lower() in _NETWORK_SCHEMES


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (``"sha256"`` or ``"md5"``)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _normalise_hex(value: str | None, length: int, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a hex string or None, got {type(value).__name__}")
    value = value.strip().lower()
    if len(value) != length or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"{name} must be {length} hex digits, got {value!r} ({len(value)} characters)")
    return value


def _open_source(source: str | os.PathLike, timeout: float):
    """(readable stream, expected size or None) for a URL (http/https/file) or a local path."""
    text = os.fspath(source)
    scheme = urllib.parse.urlparse(text).scheme.lower()
    if scheme in ("http", "https", "ftp", "file"):
        response = urllib.request.urlopen(text, timeout=timeout)  # schemes checked above
        length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
        return response, (int(length) if length and length.isdigit() else None)
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"{text!r} is neither a URL (http, https, ftp, file) nor an existing file")
    return open(path, "rb"), path.stat().st_size


def _verify(path: Path, sha256: str | None, md5: str | None, what: str) -> None:
    if sha256 is not None:
        got = file_digest(path, "sha256")
        if got != sha256:
            raise ChecksumError(f"{what}: SHA-256 mismatch: expected {sha256}, got {got}. The file is corrupt, "
                                f"truncated or not the file the recipe expects; it was deleted -- download it again.")
    elif md5 is not None:
        got = file_digest(path, "md5")
        if got != md5:
            raise ChecksumError(f"{what}: MD5 mismatch: expected {md5}, got {got}. The file is corrupt, "
                                f"truncated or not the file the recipe expects; it was deleted -- download it again.")


def download(source: str | os.PathLike, dest: str | os.PathLike, *, sha256: str | None = None,
             md5: str | None = None, timeout: float = 60.0, progress: bool = True,
             allow_unverified: bool = False) -> Path:
    """Fetch ``source`` to ``dest`` atomically and verify it.

    Args:
        source: an ``http(s)://``, ``ftp://`` or ``file://`` URL, or a local path (a file you
            downloaded yourself).
        dest: where the verified file goes. If it already exists and matches the checksum
            nothing is fetched; if it exists and does *not* match, it is fetched again.
        sha256: expected SHA-256 (64 hex digits). Preferred.
        md5: expected MD5 (32 hex digits), used only when ``sha256`` is None -- for datasets whose
            publishers give nothing stronger.
        timeout: seconds to wait for the server.
        progress: show a tqdm progress bar.
        allow_unverified: fetch an ``http(s)``/``ftp`` URL even with neither checksum (it is refused
            otherwise). Local paths and ``file://`` URLs never need it: they still warn.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        ChecksumError: the bytes do not match; nothing is left at ``dest`` or beside it.
        IncompleteDownloadError: fewer bytes arrived than the server announced; nothing is left.
        FileNotFoundError: a local ``source`` does not exist.
        UnverifiedDownloadError: a network ``source`` with no checksum and no ``allow_unverified``;
            nothing is fetched.

    Warns:
        UnverifiedDownloadWarning: neither checksum was given; the message contains the computed
        SHA-256 so it can be pinned.
    """
    sha256 = _normalise_hex(sha256, 64, "sha256")
    md5 = _normalise_hex(md5, 32, "md5")
    dest = Path(dest)
    if sha256 is None and md5 is None and not allow_unverified and _is_network(source):
        raise UnverifiedDownloadError(
            f"{source}: no checksum to verify {dest.name} against, so it was not downloaded. Pin its SHA-256 "
            f"(sha256=..., --sha256 {dest.name}=HEX), download it yourself and pass the file or folder "
            f"(--source), or accept an unverified download explicitly (allow_unverified=True, --allow-unverified)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and (sha256 or md5):
        try:
            _verify(dest, sha256, md5, str(dest))
            return dest
        except ChecksumError:
            dest.unlink()  # stale or corrupt: fetch again
    with atomic_path(dest) as part:   # renamed to dest only if every check below passes
        stream, expected = _open_source(source, timeout)
        received = 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=expected, unit="B", unit_scale=True, desc=dest.name, leave=False)
        with stream, open(part, "wb") as out:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                out.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if bar is not None:
            bar.close()
        if expected is not None and received != expected:
            raise IncompleteDownloadError(
                f"{source}: received {received} of {expected} bytes -- the transfer was interrupted; "
                f"nothing was kept, run the command again")
        _verify(part, sha256, md5, os.fspath(source))
        if sha256 is None and md5 is None:
            got = file_digest(part, "sha256")
            message = (f"\n{'!' * 72}\n  UNVERIFIED DOWNLOAD: {dest.name} has no published checksum in the recipe.\n"
                       f"  Its SHA-256 is {got}\n  Check it against a trusted source, then pin it with "
                       f"--sha256 {dest.name}={got}\n{'!' * 72}")
            print(message, file=sys.stderr)
            warnings.warn(f"{dest.name} was downloaded without verification; its SHA-256 is {got}",
                          UnverifiedDownloadWarning, stacklevel=2)
    return dest


# ----------------------------------------------------------------------------------------- extraction

def _member_problem(name: str, root: Path) -> str | None:
    """Why writing archive member ``name`` under ``root`` is unsafe (None if it is fine)."""
    if not name or "\x00" in name:
        return "empty name or NUL byte"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or PurePosixPath(posix).is_absolute():
        return "absolute path"
    if len(posix) >= 2 and posix[1] == ":":
        return "drive letter"
    if ".." in PurePosixPath(posix).parts:
        return "'..' component"
    target = (root / posix).resolve()
    if target != root and root not in target.parents:
        return "resolves outside the target folder"
    return None


def _link_problem(member_dir: str, link_target: str, root: Path, *, hard: bool) -> str | None:
    posix = link_target.replace("\\", "/")
    if posix.startswith("/") or (len(posix) >= 2 and posix[1] == ":"):
        return f"link to absolute path {link_target!r}"
    # Hard links in tar name a path relative to the archive root; symlinks are relative to the member.
    base = root if hard else (root / member_dir)
    target = (base / posix).resolve()
    if target != root and root not in target.parents:
        return f"link pointing outside the target folder ({link_target!r})"
    return None


def _limits(max_members: int | None, max_total_bytes: int | None) -> tuple[int, int]:
    members = MAX_MEMBERS if max_members is None else max_members
    total = MAX_TOTAL_BYTES if max_total_bytes is None else max_total_bytes
    for name, value in (("max_members", members), ("max_total_bytes", total)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return members, total


class _Budget:
    """Running count of members and declared bytes, failing as soon as a limit is passed."""

    def __init__(self, archive: Path, max_members: int, max_total_bytes: int):
        self.archive, self.max_members, self.max_total_bytes = archive, max_members, max_total_bytes
        self.members = self.bytes = 0

    def add(self, name: str, size: int) -> None:
        self.members += 1
        self.bytes += max(int(size), 0)
        if self.members > self.max_members:
            raise ArchiveTooLargeError(
                f"{self.archive.name}: more than {self.max_members:,} members (at {name!r}); an archive bomb? "
                f"Nothing was extracted. If the archive is genuine, pass max_members= a larger limit")
        if self.bytes > self.max_total_bytes:
            raise ArchiveTooLargeError(
                f"{self.archive.name}: members unpack to more than {self.max_total_bytes:,} bytes (at {name!r}); "
                f"an archive bomb? Nothing was extracted. If the archive is genuine, pass max_total_bytes= "
                f"a larger limit")


def check_archive_members(archive: str | os.PathLike, root: str | os.PathLike, *, max_members: int | None = None,
                          max_total_bytes: int | None = None) -> list[str]:
    """Check every member of a tar or zip archive before anything is extracted.

    Args:
        archive: a ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz`` or ``.zip`` file.
        root: the folder it would be extracted into.
        max_members: the most members allowed (``None``: :data:`MAX_MEMBERS`).
        max_total_bytes: the most uncompressed bytes allowed, summed over the members' declared
            sizes (``None``: :data:`MAX_TOTAL_BYTES`). Extraction never writes more than declared:
            ``zipfile`` stops at each member's declared size and a tar member's size is exact.

    Returns:
        The member names, in archive order.

    Raises:
        UnsafeArchiveError: naming the first offending member: absolute path, ``..`` component,
            drive letter, a symlink or hard link that points outside ``root``, or a device/FIFO file.
        ArchiveTooLargeError: (a subclass of it) more members or bytes than the limits.
        ValueError: the file is not a readable tar or zip archive (corrupt or truncated), or a bad limit.
    """
    archive = Path(archive)
    root = Path(root).resolve()
    budget = _Budget(archive, *_limits(max_members, max_total_bytes))
    names: list[str] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                budget.add(info.filename, info.file_size)
                problem = _member_problem(info.filename, root)
                mode = (info.external_attr >> 16) & 0o170000
                if problem is None and mode == 0o120000:  # a symlink stored in a zip
                    target = zf.read(info).decode("utf-8", "replace")
                    problem = _link_problem(str(PurePosixPath(info.filename).parent), target, root, hard=False)
                if problem:
                    raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is unsafe ({problem}); "
                                             f"nothing was extracted")
                names.append(info.filename)
        return names
    try:
        with tarfile.open(archive) as tf:
            for member in tf:  # streamed: a bomb of members fails at the limit, not after listing them all
                budget.add(member.name, member.size if member.isfile() else 0)
                problem = _member_problem(member.name, root)
                if problem is None and (member.issym() or member.islnk()):
                    problem = _link_problem(str(PurePosixPath(member.name).parent), member.linkname, root,
                                            hard=member.islnk())
                if problem is None and (member.isdev() or member.isfifo()):
                    problem = "device or FIFO file"
                if problem:
                    raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} is unsafe ({problem}); "
                                             f"nothing was extracted")
                names.append(member.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{archive}: not a readable tar or zip archive ({type(exc).__name__}: {exc}); "
                         f"it is corrupt or truncated -- delete it and download it again") from exc
    return names


def _has_extraction_filters() -> bool:
    """Whether this Python's ``tarfile`` has PEP 706 filters (3.10.12+, 3.11.4+, 3.12+)."""
    return hasattr(tarfile, "data_filter")


def _extract_tar_checked(tf: tarfile.TarFile, root: Path) -> None:
    """Extract the already checked members of ``tf`` into ``root`` without ``tarfile``'s own writer.

    The fallback for Pythons without extraction filters: regular files are copied from
    ``extractfile`` with mode ``0o644`` (``0o755`` when executable), folders made with the default
    mode, symlinks re-created and hard links copied (both were checked to stay inside ``root``);
    owners, setuid/setgid bits and timestamps are not restored, device files never reach here.
    """
    root = root.resolve()
    for member in tf:
        target = root / member.name.replace("\\", "/")
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if member.issym():
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink(member.linkname, target)
        elif member.islnk():
            source = root / member.linkname.replace("\\", "/")
            shutil.copyfile(source, target)
        elif member.isfile():
            stream = tf.extractfile(member)
            with stream, open(target, "wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
            os.chmod(target, 0o755 if member.mode & 0o100 else 0o644)
        else:  # devices and FIFOs were refused by check_archive_members
            raise UnsafeArchiveError(f"member {member.name!r} is not a file, folder or link")


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, *, overwrite: bool = False,
                 max_members: int | None = None, max_total_bytes: int | None = None) -> Path:
    """Extract a tar or zip archive into ``dest`` atomically, refusing unsafe members and archive bombs.

    Every member is checked first (:func:`check_archive_members`, which also enforces the size
    limits); the archive is then extracted into a temporary folder beside ``dest`` and renamed to
    ``dest`` only when the whole extraction succeeded. A corrupt archive, an unsafe member or an
    archive over the limits leaves no ``dest``.

    Args:
        archive: the archive file.
        dest: the folder to create (must not exist unless ``overwrite``).
        overwrite: replace an existing ``dest``.
        max_members: the most members allowed (``None``: :data:`MAX_MEMBERS`).
        max_total_bytes: the most uncompressed bytes allowed (``None``: :data:`MAX_TOTAL_BYTES`).

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        UnsafeArchiveError: a member would escape ``dest`` or is a special file.
        ArchiveTooLargeError: more members or uncompressed bytes than the limits.
        ValueError: the archive is corrupt or truncated.
        FileExistsError: ``dest`` exists and ``overwrite`` is False.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} already exists; pass overwrite=True to replace it")
    with atomic_directory(dest) as tmp:
        check_archive_members(archive, tmp, max_members=max_members, max_total_bytes=max_total_bytes)
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)
            else:
                with tarfile.open(archive) as tf:
                    if _has_extraction_filters():
                        # Our own checks above; the 'data' filter (PEP 706) is a second line of defence.
                        tf.extractall(tmp, filter="data")
                    else:
                        _extract_tar_checked(tf, tmp)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ValueError(f"{archive}: extraction failed ({type(exc).__name__}: {exc}); the archive is "
                             f"corrupt or truncated -- delete it and download it again") from exc
    return dest
