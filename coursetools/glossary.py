"""The English <-> Simplified Chinese glossary (``docs/glossary.md``) and the lessons' links to it.

Used by ``tests/coursetools/test_glossary.py`` and the instructor pack.

**The glossary.** ``docs/glossary.md`` has one ``## Lesson NN — ...`` section per lesson (and a last
``## Across lessons`` section for terms that several lessons use and no lesson's key points introduce: their
``lesson`` is :data:`ACROSS`, and no terms line lists them) and, under it, one ``### <English term>`` heading per term (the heading gives the term its anchor, as GitHub and
MyST's ``myst_heading_anchors`` slug it: ``### Otsu's method`` -> ``#otsus-method``). The first
line under a heading starts with the Chinese term in bold and may name English variants after
``*also:*``::

    ### adaptive threshold

    **自适应阈值**（局部阈值） · *also:* local threshold, adaptive

**How a lesson marks the terms of its key points.** The key points section of a solution (the
cells from a ``## Key points`` or ``## Summary`` heading to the next ``##`` heading) ends with one
*terms line*, generated from the glossary's section for that lesson (:func:`terms_line`)::

    **Terms** ([glossary · 术语表](../docs/glossary.md)): [histogram](../docs/glossary.md#histogram) 直方图 · ...

Every term linked there is a key-points term; the test checks that each one is in the glossary
with the same Chinese name, that the line lists exactly the glossary's terms of that lesson, that
the lesson uses each term (or one of its variants) in its text, and that every bold phrase in the
key points that names a glossary term is linked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import checkout

#: The glossary's path inside the checkout.
GLOSSARY = Path("docs") / "glossary.md"
#: The glossary as linked from a notebook in ``solutions/`` or ``notebooks/``.
LINK_BASE = "../docs/glossary.md"
#: Headings that open a lesson's key points.
KEY_POINTS_HEADINGS = ("Key points", "Summary")
TERMS_PREFIX = f"**Terms** ([glossary · 术语表]({LINK_BASE})): "

_LESSON = re.compile(r"^## Lesson (\d{2})\b")
#: The section of terms that several lessons use and none introduces in its key points (no terms line carries them).
_ACROSS = re.compile(r"^## Across lessons\b")
#: The ``lesson`` of a term of that section.
ACROSS = ""
_TERM = re.compile(r"^### (.+?)\s*$")
_CHINESE = re.compile(r"^\*\*([^*]+)\*\*")
_ALSO = re.compile(r"\*also:\*\s*(.+)$")
_LINK = re.compile(r"\[([^\]]+)\]\(" + re.escape(LINK_BASE) + r"#([^)\s]+)\)\s*([^·\n]*)")


@dataclass
class Term:
    english: str
    chinese: str
    lesson: str
    anchor: str
    also: list[str] = field(default_factory=list)


def anchor(heading: str) -> str:
    """The anchor GitHub (and MyST's ``myst_heading_anchors``) give a heading.

    Lower case; every character that is not a letter, digit, ``_``, ``-`` or space dropped;
    spaces become ``-``: ``"Otsu's method"`` -> ``"otsus-method"``.
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def parse(text: str) -> list[Term]:
    """The glossary's terms, in order.

    Raises:
        ValueError: a term outside a lesson section, without its bold Chinese name, or twice.
    """
    terms: list[Term] = []
    lesson = None
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if match := _LESSON.match(line):
            lesson = match.group(1)
            continue
        if _ACROSS.match(line):
            lesson = ACROSS
            continue
        if line.startswith("## "):
            lesson = None
            continue
        if not (match := _TERM.match(line)):
            continue
        english = match.group(1)
        if lesson is None:
            raise ValueError(f"glossary line {i + 1}: term {english!r} is not under a '## Lesson NN' "
                             f"(or '## Across lessons') heading")
        following = next((ln for ln in lines[i + 1:] if ln.strip()), "")
        chinese = _CHINESE.match(following)
        if not chinese:
            raise ValueError(f"glossary line {i + 1}: term {english!r} needs its Chinese name in bold on the next "
                             f"line ('**语义分割** ...'), got {following!r}")
        also = _ALSO.search(following)
        terms.append(Term(english=english, chinese=chinese.group(1).strip(), lesson=lesson, anchor=anchor(english),
                          also=[a.strip() for a in also.group(1).split(",")] if also else []))
    seen: dict[str, str] = {}
    for term in terms:
        if term.anchor in seen:
            raise ValueError(f"glossary: {term.english!r} and {seen[term.anchor]!r} have the same anchor "
                             f"#{term.anchor}")
        seen[term.anchor] = term.english
    return terms


def load(path: Path | None = None) -> list[Term]:
    """The glossary's terms, from ``path`` (default: ``docs/glossary.md`` of :func:`coursetools.checkout.root`)."""
    path = checkout.root() / GLOSSARY if path is None else path
    return parse(Path(path).read_text(encoding="utf-8"))


def terms_line(terms: list[Term], lesson: str) -> str | None:
    """The line a lesson's key points end with: a link per glossary term of that lesson (None: no terms)."""
    mine = [t for t in terms if t.lesson == lesson]
    if not mine:
        return None
    return TERMS_PREFIX + " · ".join(f"[{t.english}]({LINK_BASE}#{t.anchor}) {t.chinese}" for t in mine)


def key_points(nb) -> str:
    """The markdown of a notebook's key points section ('' when it has none).

    From the ``## Key points`` (or ``## Summary``) heading to the next ``##`` heading or the end of the
    notebook, across cells.
    """
    heading = re.compile(r"^##\s+(" + "|".join(KEY_POINTS_HEADINGS) + r")\s*$")
    out: list[str] = []
    inside = False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            if inside:
                break
            continue
        for line in "".join(cell.source).split("\n"):
            if heading.match(line):
                inside = True
            elif inside and re.match(r"^##?\s", line):
                return "\n".join(out)
            if inside:
                out.append(line)
    return "\n".join(out)


def linked_terms(markdown: str) -> list[tuple[str, str, str]]:
    """``(link text, anchor, Chinese after the link)`` for every glossary link in ``markdown``."""
    return [(m.group(1), m.group(2), m.group(3).strip()) for m in _LINK.finditer(markdown)]


def with_terms_line(source: str, line: str) -> str:
    """A key-points cell's ``source`` with ``line`` as the last line of its key points (replacing an old one).

    Raises:
        ValueError: the cell has no key-points heading.
    """
    lines = [ln for ln in source.split("\n") if not ln.startswith("**Terms** (")]
    start = next((i for i, ln in enumerate(lines)
                  if re.match(r"^##\s+(" + "|".join(KEY_POINTS_HEADINGS) + r")\s*$", ln)), None)
    if start is None:
        raise ValueError("this cell has no '## Key points' or '## Summary' heading")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^##?\s", lines[i])), len(lines))
    body = lines[start:end]
    while body and not body[-1].strip():
        body.pop()
    tail = lines[end:]
    return "\n".join(lines[:start] + body + ["", line] + ([""] + tail if tail else []))
