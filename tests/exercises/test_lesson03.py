"""Meta-tests of lesson 03's checks: "not attempted" on the learner's stub, failed on plausible wrong
answers, passed on the solution (stub and solution read from solutions/03_fcn.ipynb)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segcourse.exercises.registry import run_check

from .notebook_solutions import solution, verify_against_notebook

# ---------------------------------------------------------------- 3.1

def _centre_always_half(in_channels, out_channels, kernel_size):  # forgets the odd-k centre
    factor = (kernel_size + 1) // 2
    centre = factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    tent = 1 - (og - centre).abs() / factor
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    for c in range(in_channels):
        weight[c, c] = tent[:, None] * tent[None, :]
    return weight


def _every_channel_pair(in_channels, out_channels, kernel_size):  # mixes channels
    return solution("3.1")(1, 1, kernel_size).expand(in_channels, out_channels, -1, -1).clone()


def _wrong_layout(in_channels, out_channels, kernel_size):
    return solution("3.1")(1, 1, kernel_size)[0, 0]


# ---------------------------------------------------------------- 3.2

# out = (in - 1) * s - 2p + k: a (7,5) k4 s2 p1 -> (14, 10); b (3,2) k16 s8 p4 -> (24, 16);
# c (5,5) k3 s2 p0 -> (11, 11); d (4,6) k64 s32 p0 -> (160, 224)
WRONG_3_2 = [
    {"a": (14, 10), "b": (24, 16), "c": (10, 10), "d": (128, 192)},   # in * stride everywhere
    {"a": (16, 12), "b": (32, 24), "c": (11, 11), "d": (160, 224)},  # forgot the padding
    {"a": (14, 10), "b": (24, 16), "c": (11, 11)},                    # a key missing
    [(14, 10)],                                                       # not a dict
]


def test_3_2_answer_agrees_with_pytorch():
    from segcourse.exercises.lesson03 import TRANSPOSED_CASES

    sizes = {}
    for key, (size, k, s, p) in TRANSPOSED_CASES.items():
        out = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, *size))
        assert tuple(out.shape[-2:]) == tuple((n - 1) * s - 2 * p + k for n in size)
        sizes[key] = tuple(out.shape[-2:])
    assert sizes == solution("3.2")


# ---------------------------------------------------------------- 3.3

# stride 3, 1-D tap counts per output pixel: k=5 -> 1 or 2, k=6 -> always 2, k=7 -> 2 or 3;
# in 2-D the counts of the two directions multiply: {1, 2, 4}, {4}, {4, 6, 9}
WRONG_3_3 = [
    {"k5": [1, 2], "k6": [2], "k7": [2, 3]},           # thinks in 1-D
    {"k5": [1, 2, 4], "k6": [1, 2, 4], "k7": [4, 6, 9]},  # thinks k=6 alternates too
    {"k5": [4], "k6": [4], "k7": [9]},                 # no checkerboard at all
    {"k5": [1, 2, 4], "k6": [4], "k7": [4, 9]},        # forgets the mixed 2 x 3 pixels
    {"k5": [1, 2, 4], "k6": [4]},                      # a key missing
]


def test_3_3_any_order_and_floats_pass():
    assert run_check("3.3", {"k5": (4.0, 2.0, 1.0, 2.0), "k6": {4}, "k7": [9, 6, 4]}).passed


def test_3_3_answer_agrees_with_pytorch():
    from segcourse.exercises.lesson03 import _interior_values

    assert {f"k{k}": _interior_values(k) for k in (5, 6, 7)} == solution("3.3") == {"k5": [1, 2, 4], "k6": [4], "k7": [4, 6, 9]}


# ---------------------------------------------------------------- 3.4

def _as_a_convolution(x, weight, stride, padding):  # "transposed" read as an ordinary convolution
    return F.conv2d(x, weight.transpose(0, 1), stride=stride, padding=padding)


def _no_crop(x, weight, stride, padding):
    return solution("3.4")(x, weight, stride, 0)


def _flipped_kernel(x, weight, stride, padding):
    return solution("3.4")(x, weight.flip(-1, -2), stride, padding)


def _upsample_then_conv(x, weight, stride, padding):  # nearest upsampling then a 'same' convolution
    up = F.interpolate(x, scale_factor=stride, mode="nearest")
    k = weight.shape[-1]
    return F.conv2d(up, weight.transpose(0, 1).flip(-1, -2), padding=k // 2)


# ---------------------------------------------------------------- 3.5

def _variant(**changes):
    """The solution with one thing changed: a plausible mistake."""
    def build(encoder, head, num_classes):
        model = solution("3.5")(encoder, head, num_classes)
        if changes.get("skip_not_zero"):
            nn.init.normal_(model.score_pool4.weight)
        if changes.get("random_upscore2"):
            nn.init.normal_(model.upscore2.weight)
        if changes.get("learn_last"):
            model.upscore16.weight.requires_grad_(True)
        if changes.get("interpolate"):  # the source article's hidden resize instead of asking for the size
            def forward(x):
                pools = model.encoder(x)
                skip = model.score_pool4(pools[-2])
                up = F.interpolate(model.upscore2(model.head(pools[-1])), size=skip.shape[-2:], mode="bilinear")
                return F.interpolate(up + skip, size=x.shape[-2:], mode="bilinear")
            model.forward = forward
        if changes.get("skip_after_upsampling"):  # adds pool4 scores at the wrong place (never at stride 16)
            def forward(x):
                pools = model.encoder(x)
                skip = model.score_pool4(pools[-2])
                up = model.upscore2(model.head(pools[-1]), output_size=skip.shape[-2:])
                return model.upscore16(up, output_size=x.shape[-2:]) + F.interpolate(skip, size=x.shape[-2:])
            model.forward = forward
        return model
    return build


WRONG = {
    "3.1": [_centre_always_half, _every_channel_pair, _wrong_layout, lambda c, o, k: torch.ones(c, o, k, k)],
    "3.2": WRONG_3_2,
    "3.3": WRONG_3_3,
    "3.4": [_as_a_convolution, _no_crop, _flipped_kernel, _upsample_then_conv, lambda x, w, s, p: x],
    "3.5": [_variant(skip_not_zero=True), _variant(random_upscore2=True), _variant(learn_last=True),
            _variant(interpolate=True), _variant(skip_after_upsampling=True), lambda encoder, head, c: nn.Identity()],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])


def test_3_5_solution_equals_the_package_fcn16s():
    from segcourse.models import fcn

    torch.manual_seed(0)
    ref = fcn(3, "16s", "vgg_tiny", width=4).eval()
    ours = solution("3.5")(ref.encoder, ref.head, 3).eval()
    with torch.no_grad():
        ours.score_pool4.load_state_dict(ref.score_skips[0].state_dict())
        x = torch.randn(1, 3, 97, 75)
        torch.testing.assert_close(ours(x), ref(x))
