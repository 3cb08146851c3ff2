"""Key results that a lesson publishes for ``make course``'s report.

A lesson calls :func:`record` for each number worth checking ("U-Net Dice 0.95").
The value is printed for the learner and, when the course runner set
``$SEGCOURSE_REPORT`` to a file, appended to that JSON file, so the report is built
from data, never by parsing a notebook's text.

    >>> _ = record("unet_dice", 0.9612, label="U-Net foreground Dice", target=">= 0.95")  # returns the value
    U-Net foreground Dice: 0.9612 (target >= 0.95: met)
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from pathlib import Path
from typing import Any

from ..constants import REPORT_ENV
from ..files import atomic_write_text

_TARGET = re.compile(r"^\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def target_met(value: float, target: str) -> bool:
    """Whether ``value`` meets a target written as ``">= 0.95"`` (also ``<=``, ``>``, ``<``).

    Raises:
        ValueError: the target is not an operator followed by a number.
    """
    match = _TARGET.match(target)
    if not match:
        raise ValueError(f"target {target!r} is not of the form '>= 0.95' (operators: >=, <=, >, <)")
    op, number = match.groups()
    return not math.isnan(value) and _OPS[op](value, float(number))


def record(key: str, value: Any, *, label: str | None = None, target: str | None = None,
           fmt: str = ".4f", quiet: bool = False, timing: bool = False) -> Any:
    """Publish one key result of the running lesson.

    Args:
        key: a short identifier, e.g. ``"unet_dice"``; unique within the lesson.
        value: a number, a string or a bool (JSON-serialisable).
        label: the human name shown in the report (defaults to ``key``).
        target: for numbers, the quality target in quick/full mode, e.g. ``">= 0.95"``.
            The report marks it met or missed; smoke mode never judges targets.
        fmt: format spec for numbers in the printed line.
        quiet: do not print.
        timing: the value is a time, a speed or a ratio of times: it measures the machine (and whatever
            else runs on it), so the quality gate shows it but never compares it with the stored one.

    Returns:
        ``value``, so a cell can end on it.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
        raise ValueError(f"report key {key!r} must be letters, digits, '_', '.' or '-'")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        shown = str(value)
        json_value: Any = value
    else:
        try:
            json_value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"report value for {key!r} must be a number, str or bool, got {type(value).__name__}") from None
        if float(json_value).is_integer() and isinstance(value, int):
            json_value = int(value)
        shown = format(json_value, fmt) if isinstance(json_value, float) else str(json_value)
    entry = {"key": key, "label": label or key, "value": json_value}
    if timing:
        entry["timing"] = True
    suffix = ""
    if target is not None:
        if not isinstance(json_value, (int, float)) or isinstance(json_value, bool):
            raise ValueError(f"target given for non-numeric result {key!r}")
        met = target_met(float(json_value), target)
        entry.update(target=target, met=met)
        suffix = f" (target {target.strip()}: {'met' if met else 'MISSED'})"
    if not quiet:
        print(f"{entry['label']}: {shown}{suffix}")
    path = os.environ.get(REPORT_ENV)
    if path:
        _append(Path(path), entry)
    return value


def _append(path: Path, entry: dict) -> None:
    """Add ``entry`` to the JSON list in ``path`` (replacing one with the same key), atomically."""
    entries = json.loads(path.read_text()) if path.exists() and path.stat().st_size else []
    entries = [e for e in entries if e.get("key") != entry["key"]] + [entry]
    atomic_write_text(path, json.dumps(entries, indent=2))


def read(path: str | os.PathLike) -> list[dict]:
    """The entries a lesson recorded into ``path`` (empty list if it recorded none)."""
    path = Path(path)
    if not path.exists() or not path.stat().st_size:
        return []
    return json.loads(path.read_text())
