"""The nbval sanitize file must make stored outputs independent of where the repo is checked out.

CI checks the repository out under a root we do not control (it was ``/check/work/main`` once,
and a prefix list that only knew ``/work`` left ``/check`` behind), so absolute paths are
replaced whatever their first component is, while ordinary text with slashes is left alone.
"""

import re

import pytest
from nbval.plugin import get_sanitize_patterns

from coursetools.stored import SANITIZE_FILE


def sanitize(text: str) -> str:
    """Apply the patterns in order, exactly as nbval does."""
    for regex, replace in get_sanitize_patterns(SANITIZE_FILE.read_text()):
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize(
    "root",
    ["/work/main", "/check/work/main", "/home/learner/segcourse", "/tmp/pytest-of-root/x",
     "/Users/ada/code/segcourse", "/builds/ci.runner-1/segcourse"],
)
def test_checkout_root_does_not_change_the_sanitized_output(root):
    printed = f"SegmentationFolder('{root}/datasets/shapes/val-96x96-n6-seed0', num_classes=4, 6 pairs)"
    assert sanitize(printed) == "SegmentationFolder('PATH', num_classes=4, 6 pairs)"


def test_windows_paths_are_sanitized():
    assert sanitize(r"saved to C:\Users\ada\segcourse\build") == "saved to PATH"


@pytest.mark.parametrize(
    "text",
    ["3/4 lessons", "ids [0, 2, 3]", "https://github.com/pytorch/vision", "mIoU / Dice", "TP/(TP+FP)"],
)
def test_text_that_is_not_a_path_is_left_alone(text):
    assert sanitize(text) == text


def test_timings_and_throughput_are_sanitized():
    assert sanitize("epoch 3 took 1.25 s, 812.4 img/s") == "epoch 3 took T s, N /s"
