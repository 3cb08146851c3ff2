"""The course site (``coursetools.site``): how a solution becomes a page, the link checker, and the build.

The build test (marked ``site``: ``make test-site``, run by ``.ci/run``) builds the whole site from the
repository with warnings as errors and checks that every lesson has its page, every figure, stylesheet,
script and internal link resolves, each page links the learner and the solved notebook, exercise
solutions are folded, and nothing is loaded from the network.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from coursetools import checkout
from coursetools.site import WIDGET_MIME, build, check_site, lesson_paths, readme_rows, site_notebook

ROOT = checkout.root(Path(__file__).parent)  # the checkout these tests belong to


def _notebook():
    nb = nbformat.v4.new_notebook()
    widget = {WIDGET_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0}}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lesson 04 — U-Net\n\nSee [lesson 03](03_fcn.ipynb) and the "
                                      "[glossary](../docs/glossary.md#iou)."),
        nbformat.v4.new_code_cell("def f(x):\n    # BEGIN SOLUTION 4.1\n    return x\n    # END SOLUTION 4.1"),
        nbformat.v4.new_markdown_cell("Hint 2: pad first.", metadata={"tags": ["hint"], "jupyter": {"source_hidden": True}}),
        nbformat.v4.new_markdown_cell("*Answer.* Because.", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("explore()", outputs=[
            nbformat.v4.new_output("display_data", data={**widget, "text/plain": "VBox(children=(IntSlider(value=1),))"}),
            nbformat.v4.new_output("display_data", data={**widget, "text/plain": "epoch 1/2:   0%|  | 0/8"}),
            nbformat.v4.new_output("stream", name="stdout", text="done\n")]),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_site_notebook_folds_solutions_and_hints_and_replaces_widgets():
    original = _notebook()
    before = json.dumps(original, sort_keys=True)
    nb = site_notebook(original, "04_unet", have_glossary=True)
    assert json.dumps(original, sort_keys=True) == before, "site_notebook changed its input"
    title, download, solution, hint, answer, explorer = nb.cells
    assert "[lesson 03](../lessons/03_fcn.ipynb)" in title.source
    assert "[glossary](../glossary.md#iou)" in title.source
    assert "{download}`Download the learner notebook <../_downloads_src/notebooks/04_unet.ipynb>`" in download.source
    assert "_downloads_src/solutions/04_unet.ipynb" in download.source
    assert solution.metadata["tags"] == ["hide-input"]
    assert solution.metadata["mystnb"]["code_prompt_show"] == "Show the solution"
    assert hint.source.startswith('<details class="segcourse-hint">\n<summary>Show hint 2</summary>\n\npad first.')
    assert "source_hidden" not in hint.metadata.get("jupyter", {})
    assert answer.source.startswith('<details class="segcourse-solution">\n<summary>Show the answer</summary>')
    assert answer.source.rstrip().endswith("</details>")
    # the explorer becomes a note, the progress bar is dropped, the stream stays; no widget state is kept
    kinds = [(o["output_type"], sorted(o.get("data", {}))) for o in explorer.outputs]
    assert kinds == [("display_data", ["text/html"]), ("stream", [])]
    assert "interactive explorer" in explorer.outputs[0]["data"]["text/html"]
    assert "widgets" not in nb.metadata


def test_site_notebook_leaves_glossary_links_alone_without_a_glossary():
    nb = site_notebook(_notebook(), "04_unet", have_glossary=False)
    assert "[glossary](../docs/glossary.md#iou)" in nb.cells[0].source


def test_readme_rows_reads_the_course_map():
    readme = ("intro\n\n| # | lesson | what you learn | time (learner) | quick-mode run |\n| --- | --- | --- | --- | --- |\n"
              "| 04 | [U-Net](notebooks/04_unet.ipynb) | encoder–decoder, skips | 75 min | 184 s |\n")
    assert readme_rows(readme) == {"04": {"title": "U-Net", "what": "encoder–decoder, skips"}}


def test_lesson_paths_fail_on_a_folder_without_lessons(tmp_path):
    (tmp_path / "notes.ipynb").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no lesson notebooks"):
        lesson_paths(tmp_path)


def test_check_site_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "lessons").mkdir()
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(b"png")
    (tmp_path / "index.html").write_text(
        '<a href="lessons/x.html#part-2">ok</a> <a href="lessons/x.html#nowhere">bad anchor</a> '
        '<a href="https://arxiv.org/abs/1505.04597">external</a> <a href="#top" id="top">self</a>')
    (tmp_path / "lessons" / "x.html").write_text(
        '<h2 id="part-2">2</h2><img src="../_images/a.png"><img src="../_images/missing.png">'
        '<link rel="stylesheet" href="../_static/gone.css"><a href="../../outside.html">out</a>')
    problems = check_site(tmp_path)
    assert sorted(problems) == sorted([
        "index.html: a lessons/x.html#nowhere: no element with id 'nowhere' in x.html",
        "lessons/x.html: img ../_images/missing.png not found",
        "lessons/x.html: link ../_static/gone.css not found",
        "lessons/x.html: a ../../outside.html points outside the site",
    ])


@pytest.mark.site
def test_site_builds_every_lesson_with_no_broken_reference(tmp_path):
    out = tmp_path / "site"
    result = build(out)
    print(f"site: {len(result['lessons'])} lessons, {result['bytes'] / 1e6:.1f} MB, built in {result['seconds']:.1f} s")
    assert check_site(out) == []
    index = (out / "index.html").read_text(encoding="utf-8")
    for path in lesson_paths(ROOT / "solutions"):
        page = out / "lessons" / f"{path.stem}.html"
        assert page.is_file(), f"no page for {path.name}"
        assert f'href="lessons/{path.stem}.html"' in index, f"the front page does not link {path.stem}"
        html = page.read_text(encoding="utf-8")
        nb = nbformat.read(path, as_version=4)
        figures = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                      if "image/png" in o.get("data", {}))
        shown = len(re.findall(r'<img [^>]*src="\.\./_images/', html))
        assert shown == figures, f"{path.stem}: {figures} figures in the notebook, {shown} on the page"
        solutions = sum(1 for c in nb.cells if c.cell_type == "code" and "# BEGIN SOLUTION" in c.source)
        assert html.count("Show the solution") == solutions, f"{path.stem}: not every solution folded"
        downloads = re.findall(r'class="reference download internal" download="" href="([^"]+)"', html)
        assert len(downloads) == 2, f"{path.stem}: expected the learner and solved notebook links, got {downloads}"
        for href, source in zip(downloads, (ROOT / "notebooks" / path.name, path)):
            assert (page.parent / href).resolve().read_bytes() == source.read_bytes(), f"{href} is not {source}"
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//[^"]*(unpkg|jsdelivr|cdnjs|googleapis|mathjax)', text), (
            f"{page.relative_to(out)} loads something from the network")
    assert "roialign" in (out / "searchindex.js").read_text(encoding="utf-8").lower()


def test_links_to_the_capstone_brief_point_to_its_site_page():
    from coursetools.site import _rewrite_links

    text = "Read [the brief](../docs/capstone.md#deliverables) and [the solution](../solutions/11_capstone.ipynb)."
    assert _rewrite_links(text, "../", True) == ("Read [the brief](../capstone.md#deliverables) and "
                                                 "[the solution](../lessons/11_capstone.ipynb).")
