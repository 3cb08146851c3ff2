"""Generate the learner notebooks (``notebooks/``) from the solution notebooks (``solutions/``).

``python -m coursetools exercises build [LESSON ...] [--check]`` (``make exercises``) writes them, or checks
that they are current; ``python -m coursetools exercises list`` lists the registered exercises.

The solved notebook is the one source of truth. In its code cells an exercise's
solution is a region::

    def otsu_threshold(image):
        # BEGIN SOLUTION 1.1
        hist = np.bincount(image.ravel(), minlength=256)
        ...
        # END SOLUTION 1.1

which the learner notebook replaces, at the region's indentation, by
``raise NotImplementedError("Exercise 1.1: <title>")`` -- or, when the region holds
``# STUB: <code>`` lines, by those lines' code (for value answers such as
``answer = None``).

A **project** (the capstone, lesson 11) leaves whole steps to the learner, not only small
checked exercises: ``# BEGIN PROJECT <name>`` / ``# END PROJECT <name>`` mark a step of the
solution (training, cross-validation, the report...) that the learner notebook replaces by the
region's ``# STUB:`` lines (required: the scaffold the learner starts from, which must run as it
is). Project regions are not registered exercises and have no ``check`` call: the project's rubric
grades what they produce. A notebook with project regions gets a scaffold banner that does not
link the worked solution. Markdown cells tagged ``solution`` are removed; cells tagged
``hint`` are kept, collapsed. Outputs and execution counts are cleared, a banner
cell is added at the top, and the notebook is written with nbformat's stable JSON
layout, so building twice gives identical bytes.

Markers cannot be mistyped silently: anything that looks like a marker but is not
exactly one (``# BEGIN SOLUTON 1.2``, ``#BEGIN SOLUTION 1.2``, a trailing marker after
code), an END without BEGIN or with another id, a nested or unclosed region, an id
that is not registered or belongs to another lesson or is used twice, a marker in a
markdown cell, a ``# STUB:`` outside a region, a top-level ``raise`` stub that would
stop the learner notebook, a registered exercise with no region or no ``check`` call,
and a generated cell that does not compile are all errors naming the notebook, the
cell index and the line.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from segcourse.exercises.registry import ID_PATTERN, Exercise, load_all
from segcourse.files import atomic_write_text

from . import checkout

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION (?P<id>\S+)[ \t]*$")
_END = re.compile(r"^(?P<indent>[ \t]*)# END SOLUTION (?P<id>\S+)[ \t]*$")
_PROJECT_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN PROJECT (?P<id>[A-Za-z0-9_.-]+)[ \t]*$")
_PROJECT_END = re.compile(r"^(?P<indent>[ \t]*)# END PROJECT (?P<id>[A-Za-z0-9_.-]+)[ \t]*$")
_STUB = re.compile(r"^(?P<indent>[ \t]*)# STUB: (?P<code>.*?)[ \t]*$")
_STUB_EMPTY = re.compile(r"^(?P<indent>[ \t]*)# STUB:[ \t]*$")  # an intentionally blank stub line
# Anything that looks like an attempt at a marker (case-insensitive, anywhere on the line): a comment
# "begin"/"end" followed by a word close to "solution" or by an exercise id, or a comment "stub".
_LOOSE_BEGIN_END = re.compile(r"#+\s*(begin|end)(?=[\W_]|$)[\W_]*([A-Za-z]*)(.*)$", re.IGNORECASE)
_LOOSE_STUB = re.compile(r"#+\s*stub\b", re.IGNORECASE)
_ID_ONLY = re.compile(r"^[\W_]*\d+([.,_-]\d+)?[\W_]*$")


def _looks_like_marker(line: str) -> bool:
    """Whether ``line`` contains something that looks like an exercise marker (exact or mistyped)."""
    if _LOOSE_STUB.search(line):
        return True
    for match in _LOOSE_BEGIN_END.finditer(line):
        word, rest = match.group(2), match.group(3)
        if word and (word.upper().startswith(("SOL", "PROJ")) or any(
                difflib.SequenceMatcher(None, word.upper(), target).ratio() >= 0.7 for target in ("SOLUTION", "PROJECT"))):
            return True
        if not word and _ID_ONLY.match(rest):
            return True
    return False
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](?P<id>[^"']+)["']""")
_NOTEBOOK_NAME = re.compile(r"^(?P<num>\d{2})_[A-Za-z0-9_]+\.ipynb$")

#: Cell metadata kept in the learner notebook (execution timings and the like are dropped).
_KEEP_CELL_METADATA = ("tags", "jupyter", "editable", "deletable", "slideshow", "name")


#: Tags about the solution's stored outputs, meaningless in a learner notebook (which has none); ``slide``
#: marks the figure `python -m coursetools instructor slides` extracts.
_OUTPUT_TAGS = ("nbval-check-output", "shows-failing-check", "slide")


def _learner_cell_metadata(cell) -> dict:
    """The cell metadata a learner notebook keeps: layout and tags, but no tag about stored outputs."""
    meta = {k: copy.deepcopy(v) for k, v in cell.get("metadata", {}).items() if k in _KEEP_CELL_METADATA}
    tags = [t for t in meta.pop("tags", []) if t not in _OUTPUT_TAGS]
    if tags:
        meta["tags"] = tags
    return meta


class MarkerError(ValueError):
    """A malformed exercise marker (the message names the notebook, the cell and the line)."""


@dataclass
class BuildResult:
    """What building one notebook gave."""

    source: Path
    target: Path
    text: str | None = None           # the learner notebook's JSON (None when there were errors)
    errors: list[str] = field(default_factory=list)
    exercises: list[str] = field(default_factory=list)


def lesson_number(path: Path) -> int:
    """``7`` for ``solutions/07_metrics.ipynb``.

    Raises:
        MarkerError: the file name is not ``NN_name.ipynb``.
    """
    match = _NOTEBOOK_NAME.match(path.name)
    if not match:
        raise MarkerError(f"{path.name}: a lesson notebook must be named NN_name.ipynb (two digits, underscore, name)")
    return int(match["num"])


def _transform_region(lines: list[str], begin_indent: str, ex: Exercise) -> list[str]:
    """The learner's lines for one region's body (markers excluded)."""
    stubs = []
    for line in lines:
        match = _STUB.match(line) or _STUB_EMPTY.match(line)
        if match:
            code = match.groupdict().get("code") or ""
            stubs.append(f"{match['indent']}{code}".rstrip() if code else "")
    if stubs:
        return stubs
    return [f'{begin_indent}raise NotImplementedError("Exercise {ex.id}: {ex.title}")']


def _compile_check(source: str, where: str) -> str | None:
    """Compile a generated code cell (after IPython's magic transforms); an error message or None."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        python = TransformerManager().transform_cell(source)
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        python = source
    try:
        tree = compile(python, where, "exec", ast.PyCF_ONLY_AST)
    except SyntaxError as error:
        return f"the learner's version of this cell does not compile: {error.msg} (line {error.lineno})"
    # A raise NotImplementedError outside any function would stop the learner notebook.
    inside_functions = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside_functions.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and id(node) not in inside_functions:
            exc = node.exc
            name = getattr(getattr(exc, "func", exc), "id", None)
            if name == "NotImplementedError":
                return (f"line {node.lineno}: the stub `raise NotImplementedError(...)` would run at the top level and stop "
                        f"the learner notebook; put the region inside a function or give it '# STUB: ...' lines "
                        f"(e.g. '# STUB: answer = None')")
    return None


def transform_notebook(nb, name: str, lesson: int, registry: dict[str, Exercise]):
    """Return ``(learner_notebook, exercise_ids, errors)`` for a solution notebook.

    Args:
        nb: the solution notebook (an ``nbformat.NotebookNode``; not modified).
        name: the notebook's file name, used in error messages and the banner.
        lesson: the lesson number the exercise ids must belong to.
        registry: ``{id: Exercise}``, the registered exercises.
    """
    import nbformat

    errors: list[str] = []
    seen: dict[str, str] = {}
    projects: dict[str, str] = {}
    out_cells = []
    check_calls: set[str] = set()

    def err(cell_index: int, line_no: int | None, message: str) -> None:
        where = f"{name}, cell {cell_index}" + (f", line {line_no}" if line_no else "")
        errors.append(f"{where}: {message}")

    for index, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        lines = source.split("\n")
        tags = list(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type != "code":
            for n, line in enumerate(lines, 1):
                if _BEGIN.match(line) or _END.match(line) or _looks_like_marker(line):
                    err(index, n, f"exercise marker in a {cell.cell_type} cell: {line.strip()!r}; solution regions go in "
                                  f"code cells (tag a markdown answer 'solution' instead)")
            if "solution" in tags:
                if cell.cell_type != "markdown":
                    err(index, None, "only markdown cells may be tagged 'solution'")
                continue
            new = copy.deepcopy(cell)
            if "hint" in tags:
                new.metadata.setdefault("jupyter", {})["source_hidden"] = True
            out_cells.append(new)
            continue

        if "solution" in tags:
            err(index, None, "a code cell is tagged 'solution'; mark its solution with '# BEGIN SOLUTION <id>' / "
                             "'# END SOLUTION <id>' instead (the tag is for markdown answers)")
        check_calls.update(_CHECK_CALL.findall(source))
        out_lines: list[str] = []
        open_id = open_indent = None
        open_line = 0
        region: list[str] = []
        project_id = None
        project_line = 0
        project: list[str] = []
        for n, line in enumerate(lines, 1):
            begin, end = _BEGIN.match(line), _END.match(line)
            stub = _STUB.match(line) or _STUB_EMPTY.match(line)
            p_begin, p_end = _PROJECT_BEGIN.match(line), _PROJECT_END.match(line)
            if p_begin:
                if project_id is not None or open_id is not None:
                    err(index, n, f"'# BEGIN PROJECT {p_begin['id']}' inside an open region; regions cannot be nested")
                    continue
                if p_begin["id"] in projects:
                    err(index, n, f"project step {p_begin['id']} has a second region (the first is at "
                                  f"{projects[p_begin['id']]})")
                projects.setdefault(p_begin["id"], f"cell {index}, line {n}")
                project_id, project_line, project = p_begin["id"], n, []
                continue
            if p_end:
                if project_id is None or p_end["id"] != project_id:
                    err(index, n, f"'# END PROJECT {p_end['id']}' without a matching '# BEGIN PROJECT {p_end['id']}'")
                    continue
                stubs = [f"{m['indent']}{m.groupdict().get('code') or ''}".rstrip()
                         for m in (_STUB.match(x) or _STUB_EMPTY.match(x) for x in project) if m]
                if not stubs:
                    err(index, n, f"project step {project_id} has no '# STUB:' lines: give the scaffold the learner "
                                  "starts from (it must run as it is)")
                out_lines.extend(stubs)
                project_id = None
                continue
            if project_id is not None:
                if begin or end:
                    err(index, n, f"an exercise region inside the project step {project_id} (opened at line "
                                  f"{project_line}); regions cannot be nested")
                elif _looks_like_marker(line) and not stub:
                    err(index, n, f"this looks like a marker but is not exactly one: {line.strip()!r}")
                project.append(line)
                continue
            if begin:
                ex_id = begin["id"]
                if open_id is not None:
                    err(index, n, f"'# BEGIN SOLUTION {ex_id}' inside the open region {open_id} (opened at line {open_line}); "
                                  f"regions cannot be nested")
                    continue
                if not ID_PATTERN.match(ex_id):
                    err(index, n, f"exercise id {ex_id!r} is not of the form '<lesson>.<n>' such as '{lesson}.1'")
                elif int(ex_id.split(".")[0]) != lesson:
                    err(index, n, f"exercise {ex_id} belongs to lesson {ex_id.split('.')[0]}, not to this notebook's lesson {lesson}")
                elif ex_id not in registry:
                    err(index, n, f"exercise {ex_id} is not registered; add its check to segcourse/exercises/lesson{lesson:02d}.py "
                                  f"(known: {', '.join(i for i in registry if registry[i].lesson == lesson) or 'none'})")
                if ex_id in seen:
                    err(index, n, f"exercise {ex_id} has a second region (the first is at {seen[ex_id]})")
                seen.setdefault(ex_id, f"cell {index}, line {n}")
                open_id, open_indent, open_line, region = ex_id, begin["indent"], n, []
                continue
            if end:
                ex_id = end["id"]
                if open_id is None:
                    err(index, n, f"'# END SOLUTION {ex_id}' without a matching '# BEGIN SOLUTION {ex_id}' in this cell")
                    continue
                if ex_id != open_id:
                    err(index, n, f"'# END SOLUTION {ex_id}' closes the region opened as {open_id} at line {open_line}")
                if end["indent"] != open_indent:
                    err(index, n, f"'# END SOLUTION {ex_id}' is not at the indentation of its BEGIN (line {open_line})")
                ex = registry.get(open_id)
                if ex is not None:
                    out_lines.extend(_transform_region(region, open_indent, ex))
                open_id = None
                continue
            if stub:
                if open_id is None:
                    err(index, n, f"'# STUB:' outside a solution region: {line.strip()!r}")
                    continue
                region.append(line)
                continue
            if _looks_like_marker(line):
                err(index, n, f"this looks like an exercise marker but is not exactly '# BEGIN SOLUTION <id>', "
                              f"'# END SOLUTION <id>' or '# STUB: <code>' on its own line: {line.strip()!r}")
                continue
            if open_id is not None:
                region.append(line)
            else:
                out_lines.append(line)
        if project_id is not None:
            err(index, project_line, f"project step {project_id} is never closed in this cell (missing "
                                     f"'# END PROJECT {project_id}'; a region cannot span cells)")
            continue
        if open_id is not None:
            err(index, open_line, f"region {open_id} is never closed in this cell (missing '# END SOLUTION {open_id}'; "
                                  f"a region cannot span cells)")
            continue
        new_source = "\n".join(out_lines)
        if new_source != source:
            problem = _compile_check(new_source, f"{name}[{index}]")
            if problem:
                err(index, None, problem)
        new = nbformat.v4.new_code_cell(new_source)
        new.metadata = _learner_cell_metadata(cell)
        if "id" in cell:
            new["id"] = cell["id"]
        out_cells.append(new)

    for ex_id in seen:
        if ex_id not in check_calls and ex_id in registry:
            errors.append(f"{name}: exercise {ex_id} has no check call; add a cell `check(\"{ex_id}\", <your function or answer>)`")
    for ex_id, ex in registry.items():
        if ex.lesson == lesson and ex_id not in seen:
            errors.append(f"{name}: exercise {ex_id} ({ex.title}) is registered but has no '# BEGIN SOLUTION {ex_id}' region here")

    learner = nbformat.v4.new_notebook()
    learner.nbformat, learner.nbformat_minor = 4, 5
    meta = nb.get("metadata", {})
    if "kernelspec" in meta:
        learner.metadata["kernelspec"] = copy.deepcopy(meta["kernelspec"])
    if "language_info" in meta and "name" in meta["language_info"]:
        learner.metadata["language_info"] = {"name": meta["language_info"]["name"]}
    learner.cells = [_banner(name, sorted(seen, key=lambda i: int(i.split(".")[1])), registry,
                             scaffold=bool(projects))] + out_cells
    for i, cell in enumerate(learner.cells):
        if "id" not in cell or not cell["id"]:
            cell["id"] = hashlib.sha1(f"{name}:{i}".encode()).hexdigest()[:8]
    return learner, list(seen), errors


def _banner(name: str, ids: list[str], registry: dict[str, Exercise], *, scaffold: bool = False):
    import nbformat

    if scaffold:
        lines = [("> **Project scaffold.** This notebook gives you the data, the folds, the baseline, the formats of "
                  "what you hand in and the grading cell; the cells marked *Your turn* hold only a starting point, and "
                  "the work (training, cross-validation, the final model, the export, the serving, the report) is "
                  "yours. Run it unchanged and the grading cell lists everything that is still missing. The brief: "
                  "[`docs/capstone.md`](../docs/capstone.md).")]
    else:
        lines = [
            (f"> **Learner version.** This notebook is generated from [`solutions/{name}`](../solutions/{name}), where "
             f"every exercise is solved; write your answers here and run each `check(...)` cell to see how you did."),
        ]
    if ids:
        listed = "; ".join(f"{i} {registry[i].title} ({registry[i].level}, ~{registry[i].minutes} min)"
                           for i in ids if i in registry)
        lines.append(f"> Exercises: {listed}.")
    lines.append(f"> To start over, rebuild it with `python -m coursetools exercises build {name[:2]}` (this overwrites "
                 f"your copy: save it under another name first if you want to keep it).")
    cell = nbformat.v4.new_markdown_cell("\n>\n".join(lines))
    cell["id"] = "learner-banner"
    return cell


def build_notebook(source: Path, target: Path | None = None, registry: dict[str, Exercise] | None = None) -> BuildResult:
    """Transform one solution notebook; nothing is written (see :func:`build`).

    ``target`` defaults to ``notebooks/<name>`` beside the notebook's ``solutions/`` folder.
    """
    import nbformat

    source = Path(source)
    target = Path(target) if target is not None else source.resolve().parent.parent / "notebooks" / source.name
    result = BuildResult(source, target)
    try:
        lesson = lesson_number(source)
        nb = nbformat.read(source, as_version=4)
    except MarkerError as error:
        result.errors.append(str(error))
        return result
    except Exception as error:  # noqa: BLE001 - a broken notebook file is reported, not raised
        result.errors.append(f"{source.name}: cannot read the notebook: {type(error).__name__}: {error}")
        return result
    registry = load_all() if registry is None else registry
    learner, ids, errors = transform_notebook(nb, source.name, lesson, registry)
    result.exercises, result.errors = ids, errors
    if not errors:
        result.text = nbformat.writes(learner) + "\n"
    return result


def select(lessons: list[str] | None, folder: Path | None = None) -> list[Path]:
    """The solution notebooks to build: all of them, or those named by number (``1``, ``01``), stem or path.

    Args:
        folder: the solution notebooks (default: ``solutions/`` of :func:`coursetools.checkout.root`).

    Raises:
        ValueError: a name matches no solution notebook.
        FileNotFoundError: no ``folder`` given and no repository found.
    """
    folder = checkout.root() / "solutions" if folder is None else Path(folder)
    every = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not lessons:
        return every
    chosen = []
    for wanted in lessons:
        stem = Path(wanted).name.removesuffix(".ipynb")
        hits = [p for p in every if p.stem == stem or (stem.isdigit() and p.name[:2] == f"{int(stem):02d}")]
        if not hits:
            raise ValueError(f"no solution notebook matches {wanted!r} in {folder}; "
                             f"available: {', '.join(p.name for p in every) or 'none'}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def build(lessons: list[str] | None = None, *, check: bool = False, solutions: Path | None = None,
          notebooks: Path | None = None, log=print) -> int:
    """Build (or with ``check=True`` verify) the learner notebooks.

    Args:
        lessons: which lessons (numbers, stems or paths); all when empty.
        check: write nothing; report notebooks that are stale, missing, or have no solution notebook.
        solutions: the folder of solution notebooks (default: ``solutions/`` of
            :func:`coursetools.checkout.root`).
        notebooks: the folder of learner notebooks (default: ``notebooks/`` beside ``solutions``).
        log: where messages go.

    Returns:
        The exit status: 0 when everything built (or is current), 1 otherwise (also when no repository
        is found: the message says where it looked).
    """
    try:
        solutions = checkout.root() / "solutions" if solutions is None else Path(solutions)
        notebooks = solutions.parent / "notebooks" if notebooks is None else Path(notebooks)
        sources = select(lessons, solutions)
    except (ValueError, FileNotFoundError) as error:
        log(f"error: {error}")
        return 1
    registry = load_all()
    status = 0
    stale = []
    for source in sources:
        result = build_notebook(source, notebooks / source.name, registry)
        if result.errors:
            status = 1
            log(f"{source.name}: {len(result.errors)} marker error(s); nothing written:")
            for message in result.errors:
                log(f"  - {message}")
            continue
        current = result.target.read_text(encoding="utf-8") if result.target.exists() else None
        if check:
            if current != result.text:
                stale.append(f"{result.target.relative_to(notebooks.parent) if notebooks.parent in result.target.parents else result.target}"
                             f" ({'missing' if current is None else 'out of date'})")
            continue
        if current != result.text:
            notebooks.mkdir(parents=True, exist_ok=True)
            atomic_write_text(result.target, result.text)
            log(f"wrote {result.target.name} ({len(result.exercises)} exercise(s): {', '.join(result.exercises) or '-'})")
        else:
            log(f"{result.target.name} is current ({len(result.exercises)} exercise(s))")
    if not lessons:
        names = {p.name for p in sources}
        extra = sorted(p.name for p in notebooks.glob("*.ipynb") if _NOTEBOOK_NAME.match(p.name) and p.name not in names)
        for name in extra:
            message = f"notebooks/{name} has no solution notebook solutions/{name}"
            if check:
                stale.append(f"notebooks/{name} (no solution notebook)")
            else:
                log(f"warning: {message}; remove it if it is not a learner's own copy")
    if check:
        if stale:
            log("The learner notebooks are not what `python -m coursetools exercises build` generates:")
            for line in stale:
                log(f"  - {line}")
            log("Run `python -m coursetools exercises build` and commit notebooks/.")
            return 1
        if status == 0:
            log(f"notebooks/ is current ({len(sources)} notebook(s)).")
    return status


# ---------------------------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="generate notebooks/NN_*.ipynb from solutions/NN_*.ipynb")
    b.add_argument("lessons", nargs="*", metavar="LESSON",
                   help="lessons to build: a number (1 or 01), a stem (01_classical) or a path; default: all")
    b.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 and list the notebooks that are stale, missing or extra")
    b.add_argument("--solutions", type=Path, default=None, metavar="DIR",
                   help="the solution notebooks (default: solutions/ of the checkout)")
    b.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                   help="where the learner notebooks go (default: notebooks/ beside the solutions folder)")
    sub.add_parser("list", help="list every registered exercise")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        from segcourse.exercises.registry import _LOAD_ERRORS, all_exercises

        for ex in all_exercises():
            print(f"{ex.id:>5}  {ex.level:<8} {ex.kind:<9} ~{ex.minutes:>2} min  {ex.title}")
        for module, error in _LOAD_ERRORS.items():
            print(f"error: {module} failed to import: {error}")
        return 1 if _LOAD_ERRORS else 0
    return build(args.lessons, check=args.check, solutions=args.solutions, notebooks=args.notebooks)
