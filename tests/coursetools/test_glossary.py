"""The glossary (docs/glossary.md) covers every lesson's key-points terms; the two READMEs list the same lessons.

How key-points terms are marked: see :mod:`coursetools.glossary` (the terms line at the end of each lesson's
``## Key points`` / ``## Summary`` section, generated from the glossary's ``## Lesson NN`` section).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from coursetools import checkout
from coursetools import glossary as G

ROOT = checkout.root(Path(__file__).parent)  # the checkout these tests belong to

SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
TERMS = G.load()
BY_ANCHOR = {t.anchor: t for t in TERMS}


@pytest.mark.parametrize("heading, anchor", [
    ("Otsu's method", "otsus-method"),        # apostrophe dropped
    ("1x1 convolution", "1x1-convolution"),
    ("Lovász-Softmax loss", "lovász-softmax-loss"),  # letters outside ASCII kept, as GitHub does
    ("IoU", "iou"),
])
def test_anchor_is_the_github_heading_slug(heading, anchor):
    assert G.anchor(heading) == anchor


def test_the_issue_s_terms_have_the_usual_chinese_names():
    wanted = {"semantic segmentation": "语义分割", "instance segmentation": "实例分割",
              "panoptic segmentation": "全景分割", "atrous convolution": "空洞卷积",
              "skip connection": "跳跃连接", "IoU": "交并比"}
    got = {t.english: t.chinese for t in TERMS}
    assert {k: got.get(k) for k in wanted} == wanted


def test_the_second_review_s_terms_and_names():
    """Issue 23: leakage, calibration, throughput have entries; 标准差 is the standard deviation; "stride" is its own
    term (a layer's step), not a variant of the output stride (the product of the strides)."""
    got = {t.english: t for t in TERMS}
    assert {k: got[k].chinese for k in ("leakage", "calibration", "throughput", "standard deviation", "stride")} == {
        "leakage": "数据泄漏", "calibration": "校准", "throughput": "吞吐量", "standard deviation": "标准差",
        "stride": "步幅"}
    assert "stride" not in got["output stride"].also and "throughput" not in got["latency"].also
    names = [name.lower() for t in TERMS for name in [t.english, *t.also]]
    for name in ("stride", "throughput", "leakage", "leak", "calibration", "standard deviation", "std"):
        assert names.count(name) == 1, f"{name!r} names {names.count(name)} glossary entries"


def test_across_lessons_terms_are_in_no_terms_line():
    terms = G.parse("## Lesson 01 — x\n\n### watershed\n\n**分水岭**\n\n## Across lessons · 跨课程术语\n\n"
                    "### stride\n\n**步幅**\n")
    assert [(t.english, t.lesson) for t in terms] == [("watershed", "01"), ("stride", G.ACROSS)]
    assert "stride" not in G.terms_line(terms, "01")


def test_parse_refuses_a_term_without_its_chinese_name_and_a_repeated_anchor():
    with pytest.raises(ValueError, match="Chinese name in bold"):
        G.parse("## Lesson 01 — x\n\n### watershed\n\nFloods from markers.\n")
    with pytest.raises(ValueError, match="same anchor"):
        G.parse("## Lesson 01 — x\n\n### IoU\n\n**交并比**\n\n### iou\n\n**交并比**\n")
    with pytest.raises(ValueError, match="not under"):
        G.parse("## Intro\n\n### IoU\n\n**交并比**\n")


def test_terms_line_replaces_an_old_one_and_keeps_the_next_section():
    cell = "## Key points\n\n* one\n\n## Common mistakes\n\n* two"
    terms = G.parse("## Lesson 01 — x\n\n### watershed\n\n**分水岭** · *also:* markers\n")
    line = G.terms_line(terms, "01")
    assert line == G.TERMS_PREFIX + "[watershed](../docs/glossary.md#watershed) 分水岭"
    once = G.with_terms_line(cell, line)
    assert once == f"## Key points\n\n* one\n\n{line}\n\n## Common mistakes\n\n* two"
    assert G.with_terms_line(once, line) == once
    assert G.linked_terms(once) == [("watershed", "watershed", "分水岭")]
    assert G.terms_line(terms, "02") is None


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_every_key_points_term_is_in_the_glossary(path):
    lesson = path.name[:2]
    nb = nbformat.read(path, as_version=4)
    points = G.key_points(nb)
    assert points, f"{path.name}: no '## Key points' (or '## Summary') section"
    line = G.terms_line(TERMS, lesson)
    assert line is not None, (f"docs/glossary.md has no '## Lesson {lesson}' section with the terms of "
                              f"{path.name}'s key points: add one")
    assert line in points.split("\n"), (
        f"{path.name}: its key points must end with the terms line generated from docs/glossary.md "
        f"(coursetools.glossary.with_terms_line), which is now:\n{line}")
    for text, anchor, chinese in G.linked_terms(points):
        assert anchor in BY_ANCHOR, f"{path.name}: links glossary.md#{anchor}, which has no entry"
        term = BY_ANCHOR[anchor]
        assert (text, chinese) == (term.english, term.chinese), (path.name, text, chinese, term)
    # the lesson uses each of its terms (or a variant the entry names), outside the terms line itself
    body = (_markdown(nb).replace(line, "") + "\n" +
            "\n".join(c.source for c in nb.cells if c.cell_type == "code")).lower()
    unused = [t.english for t in TERMS if t.lesson == lesson
              and not any(name.lower() in body for name in [t.english, *t.also])]
    assert not unused, f"{path.name}: glossary terms of this lesson that the lesson never uses: {unused}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_bold_glossary_terms_in_the_key_points_are_linked(path):
    """A bold phrase in the key points that names a glossary term is a new term: it must be in the glossary
    under this lesson or an earlier one (so a learner finds it where the course introduced it)."""
    lesson = path.name[:2]
    points = G.key_points(nbformat.read(path, as_version=4))
    names = {name.lower(): t for t in TERMS for name in [t.english, *t.also]}
    late = []
    for bold in re.findall(r"\*\*([^*]+)\*\*", points):
        term = names.get(bold.strip().lower())
        if term is not None and term.lesson > lesson:
            late.append(f"{bold} (glossary: lesson {term.lesson})")
    assert not late, f"{path.name}: bold key-points terms that the glossary files under a later lesson: {late}"


_MAP_ROW = re.compile(r"^\|\s*(\d{2})\s*\|\s*\[[^\]]+\]\((notebooks/\d{2}_[^)]+\.ipynb)\)", re.MULTILINE)


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_readmes_list_the_lessons_in_solutions(readme):
    rows = _MAP_ROW.findall((ROOT / readme).read_text(encoding="utf-8"))
    assert rows == [(p.name[:2], f"notebooks/{p.name}") for p in SOLUTIONS], (
        f"{readme}'s course map must have one row per solution notebook, in order, linking its learner notebook")
