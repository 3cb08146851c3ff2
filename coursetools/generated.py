"""Files kept current from one source (the README course maps, the instructor schedule and notes).

One rule for every generator: compare the text it would write with the file; with ``check`` only report,
otherwise write it. Each generator's ``--check`` runs in the tests, so a stale file fails CI.
"""

from __future__ import annotations

from pathlib import Path

from segcourse.files import atomic_write_text


def sync_generated(path: Path, wanted: str, *, check: bool, what: str, command: str) -> bool:
    """Make ``path`` hold ``wanted``, or with ``check`` only say whether it does; True when it did already.

    path: the generated file (it may not exist yet); wanted: its full text; what: what the file holds, for the
    message (``"the course map"``); command: the command that regenerates it, named when ``check`` finds it stale.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "notes.md"
    >>> sync_generated(p, "x\\n", check=True, what="the notes", command="make notes")
    notes.md (the notes): not current; run `make notes`
    False
    >>> sync_generated(p, "x\\n", check=False, what="the notes", command="make notes")
    notes.md (the notes): written
    False
    >>> sync_generated(p, "x\\n", check=True, what="the notes", command="make notes")
    notes.md (the notes): current
    True
    """
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == wanted:
        print(f"{path.name} ({what}): current")
        return True
    if check:
        print(f"{path.name} ({what}): not current; run `{command}`")
    else:
        atomic_write_text(path, wanted)
        print(f"{path.name} ({what}): written")
    return False
