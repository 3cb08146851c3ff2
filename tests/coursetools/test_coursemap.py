"""The README's course map takes its times from the notebooks and their stamps (one source)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursetools import checkout, coursemap

ROOT = checkout.root(Path(__file__).parent)  # the checkout these tests belong to

README = """# x

| # | lesson | what you learn | time (learner) | quick-mode run |
| --- | --- | --- | --- | --- |
| 00 | [Start](notebooks/00_a.ipynb) | things | 5 min | 1 s |
| 01 | [Next](notebooks/01_b.ipynb) | more | 5 min | 1 s |

The "quick-mode run" column is old text.

## Next section
"""


def test_render_sets_both_columns_and_the_totals_line():
    facts = {"00": {"minutes": 20, "seconds": 9.4, "speed": 61.0, "machine": "CPU X, 2 logical CPUs"},
             "01": {"minutes": 110, "seconds": 30.0, "speed": 61.0, "machine": "CPU X, 2 logical CPUs"}}
    text = coursemap.render(README, facts)
    assert "| 00 | [Start](notebooks/00_a.ipynb) | things | 20 min | 9 s |" in text
    assert "| 01 | [Next](notebooks/01_b.ipynb) | more | 110 min | 30 s |" in text
    assert "all 2: 39 s" in text and "61 images/s" in text and "## Next section" in text
    assert coursemap.render(text, facts) == text


def test_render_refuses_a_map_that_misses_a_lesson():
    with pytest.raises(ValueError, match="no row for lesson"):
        coursemap.render(README, {"00": {"minutes": 1, "seconds": 1, "speed": 1, "machine": "m"},
                                  "01": {"minutes": 1, "seconds": 1, "speed": 1, "machine": "m"},
                                  "02": {"minutes": 1, "seconds": 1, "speed": 1, "machine": "m"}})


def test_learner_minutes_needs_the_time_line():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lesson\n**Time:** about 75 minutes: 45 to read and run, 30 for the exercises.")]
    assert coursemap.learner_minutes(nb, "x.ipynb") == 75
    nb.cells[0].source = "# Lesson\nTime: a while"
    with pytest.raises(ValueError, match="x.ipynb"):
        coursemap.learner_minutes(nb, "x.ipynb")


def test_readme_course_map_is_current():
    proc = subprocess.run([sys.executable, "-m", "coursetools", "coursemap", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


README_ZH = """# x

| # | 课程 | 学习内容 | 学习时间 | 快速模式运行 |
| --- | --- | --- | --- | --- |
| 00 | [开始](notebooks/00_a.ipynb) | 内容 | 5 分钟 | 1 秒 |
| 01 | [下一课](notebooks/01_b.ipynb) | 更多 | 5 分钟 | 尚未保存 |

“快速模式运行”一列是旧的文字。

## 下一节
"""


def test_render_in_chinese_uses_its_own_units_and_totals_paragraph():
    facts = {"00": {"minutes": 20, "seconds": 9.4, "speed": 61.0, "machine": "CPU X, 2 logical CPUs"},
             "01": {"minutes": 110, "seconds": None, "speed": None, "machine": None}}
    text = coursemap.render(README_ZH, facts, coursemap.ZH)
    assert "| 00 | [开始](notebooks/00_a.ipynb) | 内容 | 20 分钟 | 9 秒 |" in text
    assert "| 01 | [下一课](notebooks/01_b.ipynb) | 更多 | 110 分钟 | 尚未保存 |" in text
    assert "1 课合计 9 秒" in text and "每秒 61 张图像" in text and "旧的文字" not in text and "## 下一节" in text
    assert coursemap.render(text, facts, coursemap.ZH) == text
    with pytest.raises(ValueError, match="“快速模式运行”一列"):
        coursemap.render(README, facts, coursemap.ZH)  # the English README has no Chinese totals paragraph
