"""Meta-tests of lesson 05's checks: "not attempted" on the stub, failed on plausible wrong
answers, passed on the solution (as written in solutions/05_deeplab.ipynb)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from segcourse.exercises.registry import learner_stub, run_check, verify_exercise
from segcourse.models import ASPP


# ---------------------------------------------------------------- 5.1

def receptive_field(layers):
    r, j = 1, 1
    for k, s, d in layers:
        r += (k - 1) * d * j
        j *= s
    return r


def _ignores_dilation(layers):
    r, j = 1, 1
    for k, s, d in layers:
        r += (k - 1) * j
        j *= s
    return r


def _jump_updated_first(layers):  # multiplies by the stride before adding the kernel's span
    r, j = 1, 1
    for k, s, d in layers:
        j *= s
        r += (k - 1) * d * j
    return r


def _dilation_times_kernel(layers):  # (k * d) instead of (k - 1) * d
    r, j = 1, 1
    for k, s, d in layers:
        r += k * d * j - 1
        j *= s
    return r


def test_5_1_receptive_field():
    verify_exercise("5.1", stub=learner_stub, wrong=[_ignores_dilation, _jump_updated_first, _dilation_times_kernel],
                    solution=receptive_field)
    assert run_check("5.1", lambda layers: (receptive_field(layers), 1)).passed  # returning (r, jump) is fine


# ---------------------------------------------------------------- 5.2

def test_5_2_gridding():
    # (2,2,2): offsets are even numbers in [-6, 6] -> RF 13, 7 pixels seen; (1,2,4): every offset in [-7, 7]
    verify_exercise(
        "5.2",
        stub={"rf_222": None, "seen_222": None, "rf_124": None, "seen_124": None},
        wrong=[
            {"rf_222": 13, "seen_222": 13, "rf_124": 15, "seen_124": 15},  # no gridding
            {"rf_222": 7, "seen_222": 7, "rf_124": 7, "seen_124": 7},      # dilation ignored
            {"rf_222": 13, "seen_222": 7, "rf_124": 15, "seen_124": 8},    # thinks 1,2,4 grids too
            {"rf_222": 13, "seen_222": 7},                                 # keys missing
        ],
        solution={"rf_222": 13, "seen_222": 7, "rf_124": 15, "seen_124": 15},
    )


def test_5_2_answer_agrees_with_gradient_support():
    for rates, seen in (((2, 2, 2), 7), ((1, 2, 4), 15)):
        convs = torch.nn.Sequential(*[torch.nn.Conv1d(1, 1, 3, padding=d, dilation=d, bias=False) for d in rates])
        for c in convs:
            torch.nn.init.ones_(c.weight)
        x = torch.zeros(1, 1, 41, requires_grad=True)
        convs(x)[0, 0, 20].backward()
        assert int((x.grad != 0).sum()) == seen


# ---------------------------------------------------------------- 5.3

def image_pooling(x, conv):
    size = x.shape[-2:]
    pooled = conv(F.adaptive_avg_pool2d(x, 1))
    return F.interpolate(pooled, size=size, mode="bilinear", align_corners=False)


def _source_article_bug(x, conv):  # upsamples to its own (1 x 1) size
    pooled = conv(F.adaptive_avg_pool2d(x, 1))
    return F.interpolate(pooled, size=pooled.shape[-2:], mode="bilinear", align_corners=False)


def _max_pool(x, conv):
    pooled = conv(F.adaptive_max_pool2d(x, 1))
    return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _transposed_size(x, conv):
    pooled = conv(F.adaptive_avg_pool2d(x, 1))
    return F.interpolate(pooled, size=(x.shape[-1], x.shape[-2]), mode="bilinear", align_corners=False)


def test_5_3_image_pooling():
    verify_exercise("5.3", stub=learner_stub, wrong=[_source_article_bug, _max_pool, _transposed_size],
                    solution=image_pooling)


def test_5_3_solution_agrees_with_the_package_aspp():
    aspp = ASPP(6, 4, (1, 2, 3)).eval()
    x = torch.randn(2, 6, 7, 5)
    branch = aspp.convs[-1]
    conv = torch.nn.Sequential(branch[1], branch[2], branch[3])
    with torch.no_grad():
        torch.testing.assert_close(image_pooling(x, conv), branch(x))
