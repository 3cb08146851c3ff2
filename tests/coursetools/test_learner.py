"""The learner-notebook builder: stubs, removed answers, deterministic output, and every malformed marker."""

from __future__ import annotations

import json

import nbformat
import pytest

from coursetools import checkout
from coursetools import learner as builder
from segcourse.exercises.registry import Exercise

REG = {
    "3.1": Exercise("3.1", "Square it", "warm-up", 5, "implement", "g", "h", lambda c: None),
    "3.2": Exercise("3.2", "Predict the sign", "core", 5, "predict", "g", "h", lambda c: None),
}

FUNC = """def square(x):
    # BEGIN SOLUTION 3.1
    y = x * x
    return y
    # END SOLUTION 3.1"""
VALUE = """# BEGIN SOLUTION 3.2
# STUB: answer = None  # "+" or "-"
answer = "-"
# END SOLUTION 3.2"""
CHECKS = 'check("3.1", square)\ncheck("3.2", answer)'


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "segcourse", "display_name": "Python (segcourse)", "language": "python"}
    for i, cell in enumerate(cells):
        if isinstance(cell, str):
            cell = nbformat.v4.new_code_cell(cell)
        cell["id"] = f"c{i}"
        nb.cells.append(cell)
    return nb


def run(*cells, registry=REG):
    return builder.transform_notebook(notebook(*cells), "03_demo.ipynb", 3, registry)


def test_regions_become_stubs_and_answers_disappear():
    answer = nbformat.v4.new_markdown_cell("The answer is 42.")
    answer.metadata["tags"] = ["solution"]
    hint = nbformat.v4.new_markdown_cell("Hint: multiply.")
    hint.metadata["tags"] = ["hint"]
    executed = nbformat.v4.new_code_cell("1 + 1", execution_count=3,
                                         outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)])
    executed.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00"}
    learner, ids, errors = run(FUNC, VALUE, answer, hint, executed, CHECKS)
    assert errors == [] and ids == ["3.1", "3.2"]
    sources = [c.source for c in learner.cells]
    assert sources[1] == 'def square(x):\n    raise NotImplementedError("Exercise 3.1: Square it")'
    assert sources[2] == 'answer = None  # "+" or "-"'
    assert "The answer is 42." not in json.dumps(learner)          # solution-tagged markdown removed
    assert "x * x" not in json.dumps(learner) and 'answer = "-"' not in json.dumps(learner)
    hint_cell = next(c for c in learner.cells if c.source.startswith("Hint"))
    assert hint_cell.metadata["jupyter"]["source_hidden"] is True
    code = [c for c in learner.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert all("execution" not in c.metadata for c in code)
    assert learner.cells[0].cell_type == "markdown" and "Learner version" in learner.cells[0].source
    assert learner.metadata["kernelspec"]["name"] == "segcourse"
    nbformat.validate(learner)


def test_build_is_deterministic_and_check_detects_drift(tmp_path, monkeypatch):
    sol, out = tmp_path / "solutions", tmp_path / "notebooks"
    sol.mkdir()
    nbformat.write(notebook(FUNC, VALUE, CHECKS), sol / "03_demo.ipynb")
    monkeypatch.setattr(builder, "load_all", lambda: REG)
    log = []
    assert builder.build(solutions=sol, notebooks=out, log=log.append) == 0
    first = (out / "03_demo.ipynb").read_bytes()
    assert builder.build(solutions=sol, notebooks=out, log=log.append) == 0
    assert (out / "03_demo.ipynb").read_bytes() == first
    assert builder.build(check=True, solutions=sol, notebooks=out, log=log.append) == 0
    (out / "03_demo.ipynb").write_text(first.decode().replace("Square it", "Square"))
    log.clear()
    assert builder.build(check=True, solutions=sol, notebooks=out, log=log.append) == 1
    assert any("03_demo.ipynb (out of date)" in line for line in log)
    (out / "03_demo.ipynb").unlink()
    (out / "04_extra.ipynb").write_text("{}")
    log.clear()
    assert builder.build(check=True, solutions=sol, notebooks=out, log=log.append) == 1
    assert any("(missing)" in line for line in log) and any("04_extra.ipynb (no solution notebook)" in line for line in log)
    assert builder.build(["3"], solutions=sol, notebooks=out, log=log.append) == 0
    assert (out / "03_demo.ipynb").read_bytes() == first
    assert builder.build(["9"], solutions=sol, notebooks=out, log=log.append) == 1


def test_a_notebook_with_errors_is_not_written(tmp_path, monkeypatch):
    sol, out = tmp_path / "solutions", tmp_path / "notebooks"
    sol.mkdir()
    nbformat.write(notebook(FUNC.replace("SOLUTION 3.1\n    y", "SOLUTON 3.1\n    y"), VALUE, CHECKS), sol / "03_demo.ipynb")
    monkeypatch.setattr(builder, "load_all", lambda: REG)
    log = []
    assert builder.build(solutions=sol, notebooks=out, log=log.append) == 1
    assert not (out / "03_demo.ipynb").exists()
    assert any("03_demo.ipynb, cell 0, line 2" in line for line in log)


@pytest.mark.parametrize("cells, message", [
    # typos that would leak a solution if they were ignored
    ([FUNC.replace("BEGIN SOLUTION 3.1", "BEGIN SOLUTON 3.1"), VALUE, CHECKS], "cell 0, line 2: this looks like an exercise marker"),
    ([FUNC.replace("# BEGIN SOLUTION 3.1", "#BEGIN SOLUTION 3.1"), VALUE, CHECKS], "cell 0, line 2: this looks like an exercise marker"),
    ([FUNC.replace("# END SOLUTION 3.1", "# end solution 3.1"), VALUE, CHECKS], "cell 0, line 5: this looks like an exercise marker"),
    ([FUNC.replace("    y = x * x", "    y = x * x  # BEGIN SOLUTION 3.1"), VALUE, CHECKS], "line 3: this looks like an exercise marker"),
    ([VALUE.replace("# STUB: ", "# STUB:"), FUNC, CHECKS], "cell 0, line 2: this looks like an exercise marker"),
    # structure
    ([FUNC.replace("    # BEGIN SOLUTION 3.1\n", ""), VALUE, CHECKS], "cell 0, line 4: '# END SOLUTION 3.1' without a matching"),
    ([FUNC.replace("END SOLUTION 3.1", "END SOLUTION 3.2"), VALUE, CHECKS], "closes the region opened as 3.1"),
    ([FUNC.replace("    # END SOLUTION 3.1", ""), VALUE, CHECKS], "cell 0, line 2: region 3.1 is never closed"),
    ([FUNC.replace("    y = x * x", "    # BEGIN SOLUTION 3.2\n    y = x * x"), VALUE, CHECKS], "cannot be nested"),
    ([FUNC.replace("    # END SOLUTION 3.1", "# END SOLUTION 3.1"), VALUE, CHECKS], "not at the indentation of its BEGIN"),
    ([FUNC, VALUE.replace("3.2", "3.7"), CHECKS], "exercise 3.7 is not registered"),
    ([FUNC, VALUE.replace("3.2", "4.2"), CHECKS], "belongs to lesson 4"),
    ([FUNC, VALUE.replace("3.2", "3.02"), CHECKS], "is not of the form"),
    ([FUNC, VALUE, VALUE, CHECKS], "exercise 3.2 has a second region (the first is at cell 1, line 1)"),
    ([FUNC, VALUE, nbformat.v4.new_markdown_cell("```\n# BEGIN SOLUTION 3.2\n```"), CHECKS], "cell 2, line 2: exercise marker in a markdown cell"),
    ([FUNC, VALUE, "# STUB: x = 1", CHECKS], "cell 2, line 1: '# STUB:' outside a solution region"),
    # the learner notebook must still run and parse
    ([FUNC, VALUE.replace('# STUB: answer = None  # "+" or "-"\n', ""), CHECKS], "would run at the top level"),
    (["for i in range(3):\n    # BEGIN SOLUTION 3.1\n    print(i)\n    # END SOLUTION 3.1", VALUE, CHECKS], "would run at the top level"),
    (["if True:\n    # BEGIN SOLUTION 3.1\n    # STUB: pass(\n    x = 1\n    # END SOLUTION 3.1", VALUE, CHECKS], "does not compile"),
    # completeness
    ([FUNC, CHECKS], "exercise 3.2 (Predict the sign) is registered but has no"),
    ([FUNC, VALUE, 'check("3.1", square)'], "exercise 3.2 has no check call"),
])
def test_malformed_markers_are_errors(cells, message):
    _, _, errors = run(*cells)
    assert any(message in e for e in errors), errors
    assert all(e.startswith("03_demo.ipynb") for e in errors)


@pytest.mark.parametrize("line, looks", [
    ("# BEGIN SOLUTION 3.1", True),
    ("# BEGIN SOLUTON 3.1", True),
    ("#begin solution", True),
    ("#BEGIN_SOLUTION 3.1", True),
    ("# BEGIN 3.1", True),
    ("# End Soln 3.1", True),
    ("x = 1  # END SOLUTION 3.1", True),
    ("# STUB answer = None", True),
    ("# end of the loop over 1.5 epochs", False),
    ("# Begin with a large learning rate, e.g. 0.01", False),
    ("# the solution is below", False),
    ("legend = 'end'", False),
])
def test_what_looks_like_a_marker(line, looks):
    assert builder._looks_like_marker(line) is looks


def test_magics_and_functions_compile():
    cell = "%matplotlib inline\n" + FUNC
    _, _, errors = run(cell, VALUE, CHECKS)
    assert errors == []


def test_code_cell_tagged_solution_is_an_error():
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["solution"]
    _, _, errors = run(FUNC, VALUE, cell, CHECKS)
    assert any("code cell is tagged 'solution'" in e for e in errors)


def test_select_and_bad_names(tmp_path):
    (tmp_path / "01_a.ipynb").write_text("{}")
    (tmp_path / "02_b.ipynb").write_text("{}")
    assert [p.name for p in builder.select(["2", "01_a", "solutions/02_b.ipynb"], tmp_path)] == ["02_b.ipynb", "01_a.ipynb"]
    with pytest.raises(ValueError, match="no solution notebook matches '5'"):
        builder.select(["5"], tmp_path)
    with pytest.raises(builder.MarkerError, match="NN_name.ipynb"):
        builder.lesson_number(tmp_path / "lesson1.ipynb")


def test_cli_list_and_build_check(capsys):
    import argparse

    parser = argparse.ArgumentParser()
    builder.add_arguments(parser)
    assert builder.run(parser.parse_args(["list"])) == 0
    out = capsys.readouterr().out
    assert "1.1  warm-up  implement ~15 min  Otsu's threshold from the histogram" in out
    args = parser.parse_args(["build", "01", "--check"])
    assert args.lessons == ["01"] and args.check
    with pytest.raises(SystemExit):
        parser.parse_args([])          # an action is required


def test_the_repository_is_found_from_the_working_directory_not_the_package(tmp_path, monkeypatch):
    """The builder works on the checkout it runs in (a non-editable install has no solutions/ beside it)."""
    repo = tmp_path / "course"
    (repo / "solutions").mkdir(parents=True)
    nbformat.write(notebook(FUNC, VALUE, CHECKS), repo / "solutions" / "03_demo.ipynb")
    (repo / "docs").mkdir()
    monkeypatch.setattr(builder, "load_all", lambda: REG)
    monkeypatch.chdir(repo / "docs")  # anywhere inside the checkout
    assert checkout.root() == repo.resolve()
    log = []
    assert builder.build(["3"], log=log.append) == 0
    assert (repo / "notebooks" / "03_demo.ipynb").exists()
    assert builder.build_notebook(repo / "solutions" / "03_demo.ipynb", registry=REG).target == \
        repo.resolve() / "notebooks" / "03_demo.ipynb"
    monkeypatch.chdir(tmp_path)  # outside any checkout: a clear message, exit status 1, nothing written
    log.clear()
    assert builder.build(log=log.append) == 1
    assert "no course checkout" in log[0] and "--root" in log[0]
    with pytest.raises(FileNotFoundError, match="solutions/"):
        checkout.root()


def test_the_cli_takes_the_folders_as_options(tmp_path, monkeypatch):
    import argparse

    sol, out = tmp_path / "sol", tmp_path / "learner"
    sol.mkdir()
    nbformat.write(notebook(FUNC, VALUE, CHECKS), sol / "03_demo.ipynb")
    monkeypatch.setattr(builder, "load_all", lambda: REG)
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    builder.add_arguments(parser)
    args = parser.parse_args(["build", "--solutions", str(sol), "--notebooks", str(out)])
    assert builder.run(args) == 0 and (out / "03_demo.ipynb").exists()
    assert builder.run(parser.parse_args(["build", "--check", "--solutions", str(sol), "--notebooks", str(out)])) == 0


PROJECT = """# BEGIN PROJECT train
# STUB: model = None  # Your turn: train the recipe
model = fit_the_recipe()
# END PROJECT train
print(model)"""


def test_project_steps_become_their_scaffold_and_the_banner_does_not_link_the_solution():
    learner, ids, errors = run(FUNC, VALUE, PROJECT, CHECKS)
    assert errors == [] and ids == ["3.1", "3.2"]
    assert learner.cells[3].source == "model = None  # Your turn: train the recipe\nprint(model)"
    assert "fit_the_recipe" not in json.dumps(learner)
    banner = learner.cells[0].source
    assert "Project scaffold" in banner and "solutions/03_demo" not in banner
    plain, _, _ = run(FUNC, VALUE, CHECKS)
    assert "solutions/03_demo.ipynb" in plain.cells[0].source


@pytest.mark.parametrize("cell, message", [
    (PROJECT.replace("# STUB: model = None  # Your turn: train the recipe\n", ""), "has no '# STUB:' lines"),
    (PROJECT.replace("# END PROJECT train", ""), "project step train is never closed"),
    (PROJECT.replace("# END PROJECT train", "# END PROJECT report"), "without a matching '# BEGIN PROJECT report'"),
    (PROJECT + "\n" + PROJECT, "project step train has a second region"),
    (PROJECT.replace("# BEGIN PROJECT train", "# BEGIN PROJCT train"), "looks like an exercise marker"),
    (PROJECT.replace("model = fit_the_recipe()", "# BEGIN SOLUTION 3.1\nx = 1\n# END SOLUTION 3.1"),
     "an exercise region inside the project step train"),
])
def test_malformed_project_steps_are_errors(cell, message):
    _, _, errors = run(FUNC, VALUE, cell, CHECKS)
    assert any(message in e for e in errors), errors
