"""notebooks/ must be exactly what `python -m segcourse exercises build` generates from solutions/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout these tests belong to


def test_learner_notebooks_are_current():
    proc = subprocess.run([sys.executable, "-m", "segcourse", "exercises", "build", "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, (
        "notebooks/ is out of date or a solution notebook has marker errors; "
        "run `python -m segcourse exercises build`:\n" + proc.stdout + proc.stderr)
