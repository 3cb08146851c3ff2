"""Meta-tests of lesson 04's checks: each says "not attempted" on the learner's stub, fails on
plausible wrong answers and passes on the solution (stub and solution read from solutions/04_unet.ipynb)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segcourse.exercises.registry import CheckFailed, get, run_check
from segcourse.models.unet import pad_to, unet

from .notebook_solutions import solution, verify_against_notebook

# ---------------------------------------------------------------- 4.1

# depth 5 on 123 x 201: 123 -> 61 -> 30 -> 15 -> 7 -> 3 and 201 -> 100 -> 50 -> 25 -> 12 -> 6;
# a U-Net that crops each skip to the upsampled map returns 32 x (3, 6) = (96, 192)
WRONG_4_1 = [
    {"bottleneck": (4, 6), "cropped_output": (128, 192)},   # rounded 123 / 32 = 3.8 to the nearest
    {"bottleneck": (3, 6), "cropped_output": (123, 201)},   # believes cropping keeps the size
    {"bottleneck": (3, 6), "cropped_output": (122, 200)},   # thinks only one pixel is lost per side
    {"bottleneck": (3, 6)},                                 # a key missing
    (3, 6),                                                 # not a dict
]


def test_4_1_answer_agrees_with_the_real_network():
    model = unet(depth=5, base_channels=2).eval()
    bottleneck = model.encoder(torch.zeros(1, 3, 123, 201))[-1]
    assert tuple(bottleneck.shape[-2:]) == tuple(solution("4.1")["bottleneck"]) == (3, 6)
    assert run_check("4.1", {"bottleneck": [3, 6], "cropped_output": [96, 192]}).passed  # lists work too


# ---------------------------------------------------------------- 4.2

def _crop_skip(up, skip):  # the source article's "fix": crop the skip to the upsampled map
    return torch.cat([skip[..., : up.shape[-2], : up.shape[-1]], up], dim=1)


def _wrong_order(up, skip):
    return torch.cat([pad_to(up, skip.shape[-2:]), skip], dim=1)


def _all_padding_at_the_start(up, skip):
    dh, dw = skip.shape[-2] - up.shape[-2], skip.shape[-1] - up.shape[-1]
    return torch.cat([skip, F.pad(up, [dw, 0, dh, 0])], dim=1)


def _interpolate_instead(up, skip):
    return torch.cat([skip, F.interpolate(up, size=skip.shape[-2:], mode="bilinear")], dim=1)


def _naive_cat(up, skip):
    return torch.cat([skip, up], dim=1)  # raises on odd sizes: reported as a failed case


def _pads_only_the_height(up, skip):  # right on every case where only the height differs
    dh = skip.shape[-2] - up.shape[-2]
    return torch.cat([skip, F.pad(up, [0, 0, dh // 2, dh - dh // 2])], dim=1)


def test_4_2_the_u_net_case_catches_a_function_that_only_passes_the_shapes():
    from segcourse.exercises.lesson04 import _check_in_a_unet

    _check_in_a_unet(solution("4.2"))  # the solution passes
    zeros = lambda up, skip: torch.cat([skip, torch.zeros_like(skip[:, :1]).expand(-1, up.shape[1], -1, -1)], dim=1)
    with pytest.raises(CheckFailed, match="differs"):
        _check_in_a_unet(zeros)


def test_4_2_messages_name_the_mistake():
    assert "cropped" in run_check("4.2", _crop_skip).message
    assert "wrong order" in run_check("4.2", _wrong_order).message
    assert "wrong side" in run_check("4.2", _all_padding_at_the_start).message
    assert "Sizes of tensors must match" in run_check("4.2", _naive_cat).message


def test_4_2_solution_is_what_the_decoder_does():
    up, skip = torch.randn(1, 2, 12, 8), torch.randn(1, 3, 13, 9)
    torch.testing.assert_close(solution("4.2")(up, skip), torch.cat([skip, pad_to(up, (13, 9))], dim=1))


# ---------------------------------------------------------------- 4.3

def _legacy_nearest(mask, size):  # keeps the labels, but samples at each output pixel's top-left corner
    return F.interpolate(mask[:, None].float(), size=size, mode="nearest")[:, 0].long()


def _bilinear(mask, size):
    return F.interpolate(mask[:, None].float(), size=size, mode="bilinear").round()[:, 0].long()


def _divided_by_255(mask, size):
    return (F.interpolate(mask[:, None].float() / 255, size=size, mode="nearest-exact")[:, 0]).long()


def _keeps_float(mask, size):
    return F.interpolate(mask[:, None].float(), size=size, mode="nearest-exact")[:, 0]


def _transposed(mask, size):  # (W, H) instead of (H, W)
    return F.interpolate(mask[:, None].float(), size=size[::-1], mode="nearest-exact")[:, 0].long()


def test_4_3_messages_name_the_mistake():
    assert "invented" in run_check("4.3", _bilinear).message
    assert "255" in run_check("4.3", _divided_by_255).message
    assert "int64" in run_check("4.3", _keeps_float).message
    assert "shifted" in run_check("4.3", _legacy_nearest).message


def test_4_3_nearest_exact_samples_where_bilinear_does():
    # 9 -> 3 pixels: bilinear (align_corners=False) samples source positions (i + 0.5) * 3 - 0.5 = 1, 4, 7;
    # nearest-exact takes floor((i + 0.5) * 3) = 1, 4, 7; legacy nearest floor(i * 3) = 0, 3, 6
    row = torch.arange(9.0).view(1, 1, 9)
    assert F.interpolate(row, size=3, mode="linear").flatten().tolist() == [1.0, 4.0, 7.0]
    assert F.interpolate(row, size=3, mode="nearest-exact").flatten().tolist() == [1.0, 4.0, 7.0]
    assert F.interpolate(row, size=3, mode="nearest").flatten().tolist() == [0.0, 3.0, 6.0]


# ---------------------------------------------------------------- 4.4

def _forgets_the_decoder(in_channels, num_classes, depth, base_channels, up):
    c = [base_channels * 2**i for i in range(depth + 1)]
    total = 9 * in_channels * c[0] + 9 * c[0] ** 2 + 4 * c[0]
    for i in range(1, depth + 1):
        total += 9 * c[i - 1] * c[i] + 9 * c[i] ** 2 + 4 * c[i]
    return total + c[0] * num_classes + num_classes


def _counts_conv_biases(in_channels, num_classes, depth, base_channels, up):
    # gives every 3x3 conv a bias, although BatchNorm follows and the convs have none
    c = [base_channels * 2**i for i in range(depth + 1)]
    biases = 2 * c[0] + sum(2 * c[i] + 2 * c[i - 1] for i in range(1, depth + 1))  # encoder + decoder convs
    return solution("4.4")(in_channels, num_classes, depth, base_channels, up) + biases


def _ignores_up_mode(in_channels, num_classes, depth, base_channels, up):
    return solution("4.4")(in_channels, num_classes, depth, base_channels, "transpose")


def test_4_4_solution_counts_the_real_network():
    for up in ("transpose", "bilinear"):
        model = unet(in_channels=3, num_classes=5, depth=3, base_channels=4, up=up)
        assert solution("4.4")(3, 5, 3, 4, up) == sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- the meta-test

WRONG = {
    "4.1": WRONG_4_1,
    "4.2": [_crop_skip, _wrong_order, _all_padding_at_the_start, _interpolate_instead, _naive_cat, _pads_only_the_height],
    "4.3": [_bilinear, _divided_by_255, _keeps_float, _transposed, _legacy_nearest],
    "4.4": [_forgets_the_decoder, _counts_conv_biases, _ignores_up_mode],
}


@pytest.mark.parametrize("exercise_id", sorted(WRONG))
def test_check_fails_on_stub_and_wrong_passes_on_solution(exercise_id):
    verify_against_notebook(exercise_id, WRONG[exercise_id])


def test_every_lesson04_exercise_is_registered_with_its_metadata():
    levels = {i: get(i).level for i in ("4.1", "4.2", "4.3", "4.4")}
    assert levels == {"4.1": "warm-up", "4.2": "core", "4.3": "core", "4.4": "stretch"}
    assert {get(i).kind for i in levels} == {"predict", "implement", "break-it"}
