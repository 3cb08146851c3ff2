"""coursetools finds the checkout one way: from the working directory upward, or --root."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursetools import checkout
from coursetools.__main__ import main


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "01_a.ipynb").write_text("{}")
    (root / "docs" / "deep").mkdir(parents=True)
    return root.resolve()


def test_root_is_found_from_the_working_directory_upward(repo, monkeypatch):
    monkeypatch.chdir(repo / "docs" / "deep")
    assert checkout.root() == repo
    assert checkout.root(repo / "docs") == repo
    assert checkout.is_checkout(repo) and not checkout.is_checkout(repo / "docs")


def test_outside_a_checkout_the_error_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        checkout.root()
    message = str(error.value)
    assert f"no course checkout at or above {tmp_path.resolve()}" in message
    assert str(tmp_path.resolve().parent) in message and "--root" in message
    assert issubclass(checkout.CheckoutNotFound, FileNotFoundError)


def test_a_command_outside_a_checkout_says_so_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["coursemap", "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no course checkout at or above") and "Traceback" not in err


def test_root_option_overrides_the_working_directory(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        checkout.use(repo)
        assert checkout.root() == repo
        assert checkout.root(repo / "docs") == repo      # an explicit start still searches from there
    finally:
        checkout.use(None)
    with pytest.raises(FileNotFoundError, match="is not a course checkout"):
        checkout.use(tmp_path)


def test_cli_takes_root_before_the_command(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["--root", str(repo), "exercises", "build", "--check", "--notebooks", str(tmp_path / "nb")]) == 1
    finally:
        checkout.use(None)
    assert "01_a.ipynb" in capsys.readouterr().out  # it read the notebook of --root's solutions/
    with pytest.raises(SystemExit):
        main(["--root", str(tmp_path), "exercises", "list"])
    assert "is not a course checkout" in capsys.readouterr().err


def test_this_repository_is_a_checkout():
    here = checkout.root(Path(__file__).parent)
    assert (here / "coursetools" / "checkout.py").is_file() and (here / "segcourse" / "__init__.py").is_file()


def test_segcourse_never_imports_coursetools_or_the_tests():
    """The library a learner reads stands alone: no module of segcourse names coursetools or tests."""
    import re

    root = checkout.root(Path(__file__).parent)
    pattern = re.compile(r"^\s*(from|import)\s+(coursetools|tests)\b", re.MULTILINE)
    offenders = [str(p.relative_to(root)) for p in sorted((root / "segcourse").rglob("*.py"))
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
