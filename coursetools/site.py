"""The course site: a static HTML book of the solved lessons with their stored quick-mode outputs.

``make site`` runs ``python -m coursetools site``.

The sources are generated into ``build/site-src`` from what the repository holds at build time and
then built by Sphinx (myst-nb, the book theme; configuration in ``docs/site/conf.py``) into
``build/site`` with warnings as errors:

* ``index.md`` -- the course map: the lessons' titles and "what you learn" from the README's map
  (the same rows ``python -m coursetools coursemap`` keeps current), their times from the notebooks
  and their stamps (:func:`coursetools.coursemap.lesson_facts`); a lesson with no README row yet is
  listed with its notebook's title;
* ``lessons/NN_name.ipynb`` -- every ``solutions/NN_*.ipynb`` with its stored outputs (never
  executed), exercise solutions folded (code regions ``# BEGIN SOLUTION``, markdown cells tagged
  ``solution``), hints folded (cells tagged ``hint``), live widgets replaced by a note (a static
  page cannot run the kernel behind them), and links to download the learner and the solved notebook;
* ``glossary.md``, ``capstone.md`` (lesson 11's project brief) and ``instructor/*.md`` when
  ``docs/glossary.md``, ``docs/capstone.md`` and ``docs/instructor/`` exist.

:func:`check_site` then reads every HTML page of the output and reports every image, stylesheet,
script or internal link (with its ``#anchor``) that does not resolve.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import checkout

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_LESSON = re.compile(r"^(\d{2})_[A-Za-z0-9_]+\.ipynb$")
_HINT = re.compile(r"^\s*\**(Hint(?:\s*\d+)?)\**\s*[:.]\s*", re.IGNORECASE)
_TITLE = re.compile(r"^#\s+(.+)$", re.MULTILINE)
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
#: Links in the course's Markdown that point into the repository, rewritten to the site's pages.
_REPO_LESSON = re.compile(r"^(?:\.\./)*(?:notebooks/|solutions/)?(\d{2}_[A-Za-z0-9_]+)\.ipynb(#.*)?$")
_REPO_GLOSSARY = re.compile(r"^(?:\.\./)*(?:docs/)?glossary\.md(#.*)?$")
_REPO_CAPSTONE = re.compile(r"^(?:\.\./)*(?:docs/)?capstone\.md(#.*)?$")


def lesson_paths(solutions: Path) -> list[Path]:
    """Every solution notebook ``NN_name.ipynb`` in ``solutions``, in lesson order.

    Raises:
        FileNotFoundError: ``solutions`` holds no lesson notebook.
    """
    paths = sorted(p for p in Path(solutions).glob("*.ipynb") if _LESSON.match(p.name))
    if not paths:
        raise FileNotFoundError(f"no lesson notebooks (NN_name.ipynb) in {solutions}")
    return paths


def notebook_title(nb, name: str) -> str:
    """The text of the first cell's ``# heading``.

    Raises:
        ValueError: the first cell has no level-1 heading.
    """
    first = nb.cells[0].source if nb.cells else ""
    match = _TITLE.search(first)
    if not match:
        raise ValueError(f"{name}: the first cell must start with a '# Lesson NN — title' heading")
    return match.group(1).strip()


def readme_rows(readme: str) -> dict[str, dict[str, str]]:
    """``{"04": {"title": "U-Net", "what": "encoder–decoder, ..."}}`` from the README's course map."""
    from .coursemap import _ROW

    rows = {}
    for line in readme.split("\n"):
        match = _ROW.match(line)
        if not match:
            continue
        cells = [c.strip() for c in match.group(2).split("|")]
        if len(cells) < 2:
            continue
        title = _LINK.sub(lambda m: m.group(1), cells[0])
        rows[match.group(1)] = {"title": title, "what": " | ".join(cells[1:]).strip()}
    return rows


def _course_map(lessons: list[dict]) -> str:
    lines = ["| # | lesson | what you learn | time (learner) | quick-mode run |", "| --- | --- | --- | --- | --- |"]
    for lesson in lessons:
        seconds = f"{lesson['seconds']:.0f} s" if lesson["seconds"] is not None else "not stored"
        lines.append(f"| {lesson['number']} | [{lesson['title']}](lessons/{lesson['stem']}.ipynb) | {lesson['what']} "
                     f"| {lesson['minutes']} min | {seconds} |")
    return "\n".join(lines)


def _rewrite_links(text: str, prefix: str, have_glossary: bool) -> str:
    """Repository-relative links to lessons and the glossary -> the site's pages (``prefix``: to the site root)."""

    def fix(match):
        label, target = match.group(1), match.group(2)
        lesson = _REPO_LESSON.match(target)
        if lesson and "://" not in target:
            return f"[{label}]({prefix}lessons/{lesson.group(1)}.ipynb{lesson.group(2) or ''})"
        glossary = _REPO_GLOSSARY.match(target)
        if glossary and have_glossary:
            return f"[{label}]({prefix}glossary.md{glossary.group(1) or ''})"
        capstone = _REPO_CAPSTONE.match(target)
        if capstone and "://" not in target:
            return f"[{label}]({prefix}capstone.md{capstone.group(1) or ''})"
        return match.group(0)

    return _LINK.sub(fix, text)


def _folded(label: str, body: str, css: str) -> str:
    """Markdown ``body`` folded under ``label`` (an HTML ``<details>`` around Markdown the parser still reads)."""
    return (f'<details class="{css}">\n<summary>{html.escape(label)}</summary>\n\n{body.strip()}\n\n</details>\n')


def _widget_note(output) -> dict | None:
    """A static stand-in for a live widget output (``None``: drop it, e.g. a progress bar)."""
    text = output.get("data", {}).get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    if not re.match(r"^\s*(VBox|HBox|Box|Tab|Accordion|GridBox|interactive)\(", text) and "Slider(" not in text:
        return None
    note = ('<p class="segcourse-widget-note">An interactive explorer is shown here when the notebook runs in '
            'JupyterLab: download the notebook (top of the page) and move its controls.</p>')
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": note}}


def site_notebook(nb, stem: str, have_glossary: bool):
    """The solution notebook ``nb`` as the site shows it (a copy; ``nb`` is not changed).

    Solution code cells get myst-nb's ``hide-input`` tag (the code folded, its output shown), markdown
    cells tagged ``solution`` or ``hint`` are folded, widget outputs become a note (or are dropped, for
    progress bars) and the stored widget state is removed (it would load widget code from the network),
    and a cell after the title links the notebooks to download.
    """
    import nbformat

    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    cells = []
    for i, cell in enumerate(nb.cells):
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type == "markdown":
            source = _rewrite_links(cell.source, "../", have_glossary)
            if "solution" in tags:
                source = _folded("Show the answer", source, "segcourse-solution")
            elif "hint" in tags:
                match = _HINT.match(source)
                label = match.group(1).capitalize() if match else "Hint"
                source = _folded(f"Show {label.lower()}", source[match.end():] if match else source, "segcourse-hint")
            cell.source = source
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)
        elif cell.cell_type == "code":
            if re.search(r"^\s*# BEGIN SOLUTION\b", cell.source, re.MULTILINE):
                tags.append("hide-input")
                cell.metadata["mystnb"] = {"code_prompt_show": "Show the solution", "code_prompt_hide": "Hide the solution"}
            outputs = []
            for output in cell.get("outputs", []):
                if WIDGET_MIME in output.get("data", {}):
                    output = _widget_note(output)
                    if output is None:
                        continue
                    output = nbformat.from_dict(output)
                outputs.append(output)
            cell.outputs = outputs
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)
        if i == 0:
            cells.append(nbformat.v4.new_markdown_cell(
                f"{{download}}`Download the learner notebook <../_downloads_src/notebooks/{stem}.ipynb>` (exercises "
                f"left blank) or {{download}}`the solved notebook <../_downloads_src/solutions/{stem}.ipynb>` "
                f"(what this page shows), and run it in JupyterLab (`make lab`)."))
    nb.cells = cells
    return nb


def write_sources(src: Path, root: Path | None = None) -> list[dict]:
    """Generate the site's sources into ``src`` (emptied first) from the checkout ``root`` (default:
    :func:`coursetools.checkout.root`); return the lessons it lists."""
    import nbformat

    from .coursemap import lesson_facts

    root = checkout.root() if root is None else Path(root)
    solutions, notebooks = root / "solutions", root / "notebooks"
    if src.exists():
        shutil.rmtree(src)
    (src / "lessons").mkdir(parents=True)
    (src / "_downloads_src" / "solutions").mkdir(parents=True)
    (src / "_downloads_src" / "notebooks").mkdir(parents=True)
    glossary = root / "docs" / "glossary.md"
    instructor = root / "docs" / "instructor"
    have_glossary = glossary.is_file()

    facts = lesson_facts(solutions)
    readme = (root / "README.md").read_text(encoding="utf-8")
    rows = readme_rows(readme)
    lessons = []
    for path in lesson_paths(solutions):
        nb = nbformat.read(path, as_version=4)
        number, stem = path.name[:2], path.stem
        learner = notebooks / path.name
        if not learner.is_file():
            raise FileNotFoundError(f"{learner} is missing: build it with `python -m coursetools exercises build {number}`")
        shutil.copy2(path, src / "_downloads_src" / "solutions" / path.name)
        shutil.copy2(learner, src / "_downloads_src" / "notebooks" / path.name)
        nbformat.write(site_notebook(nb, stem, have_glossary), src / "lessons" / path.name)
        row = rows.get(number, {})
        lessons.append({"number": number, "stem": stem, "title": row.get("title") or notebook_title(nb, path.name),
                        "what": row.get("what", ""), **facts[number]})

    extra = []
    if have_glossary:
        (src / "glossary.md").write_text(_rewrite_links(glossary.read_text(encoding="utf-8"), "", True), encoding="utf-8")
        extra.append("glossary")
    capstone = root / "docs" / "capstone.md"
    if capstone.is_file():
        (src / "capstone.md").write_text(_rewrite_links(capstone.read_text(encoding="utf-8"), "", have_glossary),
                                         encoding="utf-8")
        extra.append("capstone")
    if instructor.is_dir():
        pages = sorted(instructor.glob("*.md"))
        if pages:
            (src / "instructor").mkdir()
            for page in pages:
                text = _rewrite_links(page.read_text(encoding="utf-8"), "../", have_glossary)
                (src / "instructor" / page.name).write_text(text, encoding="utf-8")
            for other in instructor.iterdir():  # figures and files the pages link to
                if other.suffix != ".md":
                    (shutil.copytree if other.is_dir() else shutil.copy2)(other, src / "instructor" / other.name)
            extra += [f"instructor/{p.stem}" for p in pages]

    intro = readme.split("\n\n")[1].strip() if readme.count("\n\n") >= 1 else ""
    index = [
        "# segcourse: image segmentation, hands-on", "", intro, "",
        ("Each lesson is a Jupyter notebook. These pages show the solved notebooks with the outputs of a real "
         "quick-mode run on a 2-core CPU (exercise solutions and hints are folded); each page links the notebook "
         "to download. Clone the repository and run `make lab` (without `make`, e.g. on Windows: "
         "`python course.py lab`) to work through them."), "",
        "## Course map", "", _course_map(lessons), "",
        "```{toctree}", ":hidden:", ":maxdepth: 1", ":caption: Lessons", "",
        *[f"lessons/{lesson['stem']}" for lesson in lessons], "```", "",
    ]
    if extra:
        index += ["```{toctree}", ":hidden:", ":maxdepth: 1", ":caption: Reference", "", *extra, "```", ""]
    (src / "index.md").write_text("\n".join(index), encoding="utf-8")
    (src / "lessons.json").write_text(json.dumps(lessons, indent=1), encoding="utf-8")
    return lessons


def build(out: Path, src: Path | None = None, root: Path | None = None, quiet: bool = True) -> dict:
    """Generate the sources from the checkout ``root`` (default: :func:`coursetools.checkout.root`) and build
    the HTML site into ``out`` (warnings are errors).

    Returns ``{"lessons": [...], "seconds": ..., "bytes": ...}``.

    Raises:
        RuntimeError: Sphinx failed or warned (its output is in the message).
    """
    start = time.monotonic()
    root = checkout.root() if root is None else Path(root)
    out, src = Path(out), Path(src) if src is not None else Path(out).parent / (Path(out).name + "-src")
    lessons = write_sources(src, root)
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-b", "html", "-c", str(root / "docs" / "site"),
           "-d", str(src / ".doctrees"), str(src), str(out)]
    if quiet:
        cmd.insert(3, "-q")
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sphinx-build failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"lessons": lessons, "seconds": time.monotonic() - start, "bytes": size}


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str]] = []  # (tag, url)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        url = {"img": attrs.get("src"), "script": attrs.get("src"), "a": attrs.get("href"),
               "link": attrs.get("href") if attrs.get("rel") in ("stylesheet", "preload", "icon", "next", "prev",
                                                                  "index", "search") else None}.get(tag)
        if url:
            self.refs.append((tag, url))


def _parse(path: Path) -> _Refs:
    parser = _Refs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def check_site(out: Path) -> list[str]:
    """Every broken reference in the built site: ``["lessons/04_unet.html: img _images/x.png not found", ...]``.

    Internal references are images, scripts, stylesheets and links that are not absolute URLs; a link's
    ``#anchor`` must name an element of its target page. External links (``http(s)://``, ``mailto:``) are not
    followed (the site is built and tested offline).
    """
    out = Path(out)
    # the pages (not the theme's template fragments under _static/)
    pages = {p: _parse(p) for p in out.rglob("*.html") if "_static" not in p.relative_to(out).parts}
    problems = []
    for page, refs in pages.items():
        for tag, url in refs.refs:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "javascript:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            name = page.relative_to(out)
            if parts.path and not str(target).startswith(str(out.resolve())):
                problems.append(f"{name}: {tag} {url} points outside the site")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{name}: {tag} {url} not found")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{name}: {tag} {url}: no element with id {parts.fragment!r} in {target.name}")
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the checkout's build/site)")
    parser.add_argument("--verbose", action="store_true", help="show Sphinx's progress")


def run(args: argparse.Namespace) -> int:
    try:
        if args.out is None:
            args.out = checkout.root() / "build" / "site"
        result = build(args.out, quiet=not args.verbose)
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}")
        return 1
    problems = check_site(args.out)
    for problem in problems:
        print(f"broken: {problem}")
    print(f"site: {len(result['lessons'])} lessons in {args.out} ({result['bytes'] / 1e6:.1f} MB), built in "
          f"{result['seconds']:.0f} s; open {args.out / 'index.html'}")
    return 1 if problems else 0
