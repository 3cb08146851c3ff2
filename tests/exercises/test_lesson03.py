"""Meta-tests of lesson 03's checks: "not attempted" on the stub, failed on plausible wrong
answers, passed on the solution (as written in solutions/03_fcn.ipynb)."""

from __future__ import annotations

import torch
from torch import nn

from segcourse.exercises.registry import learner_stub, run_check, verify_exercise


# ---------------------------------------------------------------- 3.1

def bilinear_kernel(in_channels, out_channels, kernel_size):
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    tent = 1 - (og - centre).abs() / factor
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    for c in range(in_channels):
        weight[c, c] = tent[:, None] * tent[None, :]
    return weight


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
    return bilinear_kernel(1, 1, kernel_size).expand(in_channels, out_channels, -1, -1).clone()


def _wrong_layout(in_channels, out_channels, kernel_size):
    return bilinear_kernel(1, 1, kernel_size)[0, 0]


def test_3_1_bilinear_kernel():
    verify_exercise("3.1", stub=learner_stub,
                    wrong=[_centre_always_half, _every_channel_pair, _wrong_layout, lambda c, o, k: torch.ones(c, o, k, k)],
                    solution=bilinear_kernel)


# ---------------------------------------------------------------- 3.2

def test_3_2_transposed_sizes():
    # out = (in - 1) * s - 2p + k: a (7,5) k4 s2 p1 -> (14, 10); b (3,2) k16 s8 p4 -> (24, 16);
    # c (5,5) k3 s2 p0 -> (11, 11); d (4,6) k64 s32 p0 -> (160, 224)
    solution = {"a": (14, 10), "b": (24, 16), "c": (11, 11), "d": (160, 224)}
    verify_exercise(
        "3.2",
        stub={"a": None, "b": None, "c": None, "d": None},
        wrong=[
            {"a": (14, 10), "b": (24, 16), "c": (10, 10), "d": (128, 192)},   # in * stride everywhere
            {"a": (16, 12), "b": (32, 24), "c": (11, 11), "d": (160, 224)},  # forgot the padding
            {"a": (14, 10), "b": (24, 16), "c": (11, 11)},                    # a key missing
            [(14, 10)],                                                       # not a dict
        ],
        solution=solution,
    )


def test_3_2_answer_agrees_with_pytorch():
    from segcourse.exercises.lesson03 import TRANSPOSED_CASES

    for size, k, s, p in TRANSPOSED_CASES.values():
        out = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, *size))
        assert tuple(out.shape[-2:]) == tuple((n - 1) * s - 2 * p + k for n in size)


# ---------------------------------------------------------------- 3.3

def test_3_3_checkerboard():
    # k=3, s=2: per direction an output pixel gets 1 or 2 taps -> products {1, 2, 4}; k=4: always 2 x 2 = 4
    verify_exercise(
        "3.3",
        stub={"k3": None, "k4": None},
        wrong=[
            {"k3": [1, 2], "k4": [4]},       # thinks in 1-D
            {"k3": [1, 2, 4], "k4": [2, 4]},  # thinks k=4 also alternates
            {"k3": [4], "k4": [4]},          # no checkerboard at all
            {"k3": [1, 2, 4]},               # a key missing
        ],
        solution={"k3": [1, 2, 4], "k4": [4]},
    )
    assert run_check("3.3", {"k3": (4.0, 2.0, 1.0, 2.0), "k4": {4}}).passed  # any order, duplicates, floats
