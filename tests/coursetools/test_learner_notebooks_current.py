"""notebooks/ must be exactly what `python -m coursetools exercises build` generates from solutions/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from coursetools import checkout

ROOT = checkout.root(Path(__file__).parent)  # the checkout these tests belong to


def test_learner_notebooks_are_current():
    proc = subprocess.run([sys.executable, "-m", "coursetools", "exercises", "build", "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (
        "notebooks/ is out of date or a solution notebook has marker errors; "
        "run `python -m coursetools exercises build`:\n" + proc.stdout + proc.stderr)
