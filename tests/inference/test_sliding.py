"""Sliding windows: coverage, blending weights, and equality with MONAI's sliding_window_inference."""

from __future__ import annotations

import monai.data.utils as monai_utils  # pinned test dependencies: a broken install must fail, not skip
import monai.inferers as monai_inferers
import pytest
import torch

from segcourse.inference import importance_map, sliding_window, window_starts


@pytest.mark.parametrize("size,window,overlap,expected", [
    (100, 32, 0.25, [0, 24, 48, 68]),   # stride int(32 * 0.75) = 24; 72 + 32 > 100 -> moved back to 68
    (64, 32, 0.5, [0, 16, 32]),         # stride 16; 32 + 32 = 64 reaches the edge exactly
    (32, 32, 0.25, [0]),                # image = window: one window
    (33, 32, 0.0, [0, 1]),              # stride 32; the second window is moved back to 1
    (10, 3, 0.9, list(range(8))),       # stride int(0.3) = 0 -> 1
])
def test_window_starts_worked_examples(size, window, overlap, expected):
    assert window_starts(size, window, overlap) == expected


@pytest.mark.parametrize("size", [32, 33, 47, 64, 77, 100, 129, 255])
@pytest.mark.parametrize("window,overlap", [(32, 0.0), (32, 0.25), (24, 0.5), (31, 0.7)])
def test_window_starts_cover_every_pixel_and_match_monai(size, window, overlap):
    starts = window_starts(size, window, overlap)
    covered = torch.zeros(size, dtype=torch.bool)
    for s in starts:
        covered[s:s + window] = True
    assert covered.all() and starts[-1] == size - window
    stride = max(int(window * (1 - overlap)), 1) if size != window else window
    monai = [sl[0].start for sl in monai_utils.dense_patch_slices((size,), (window,), (stride,))]
    assert starts == monai


def test_window_starts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pad the image"):
        window_starts(10, 32)
    with pytest.raises(ValueError, match="overlap"):
        window_starts(100, 32, 1.0)


@pytest.mark.parametrize("window", [(32, 32), (17, 40), (1, 5)])
@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_importance_map_equals_monai(window, mode):
    ours = importance_map(window, mode)
    theirs = monai_utils.compute_importance_map(window, mode=mode, sigma_scale=0.125, device="cpu")
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-7)
    assert (ours > 0).all()


def test_gaussian_weights_peak_in_the_centre_and_are_floored():
    w = importance_map((33, 33), "gaussian")
    assert w.argmax().item() == 16 * 33 + 16
    assert w.min().item() == pytest.approx(1e-3)   # corner exp(-16) < 1e-3 is raised to 1e-3


SIZES = [(64, 64), (100, 77), (31, 45), (20, 10), (65, 129), (96, 200)]


@pytest.mark.parametrize("height,width", SIZES)
@pytest.mark.parametrize("window", [(32, 32), (48, 40)])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.6])
@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_equals_monai_sliding_window_inference(height, width, window, overlap, mode):
    torch.manual_seed(height * 1000 + width)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1)).eval()
    image = torch.rand(2, 3, height, width)
    ours = sliding_window(net, image, window, overlap=overlap, mode=mode, batch_size=3)
    with torch.no_grad():
        theirs = monai_inferers.sliding_window_inference(image, window, 3, net, overlap=overlap, mode=mode,
                                                         sigma_scale=0.125)
    assert ours.shape == (2, 2, height, width)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_constant_blend_of_a_position_independent_predictor_is_the_predictor():
    # a 1x1 convolution gives each pixel the same value in every window: the blend must reproduce it
    net = torch.nn.Conv2d(3, 4, 1).eval()
    image = torch.rand(1, 3, 70, 90)
    for mode in ("constant", "gaussian"):
        torch.testing.assert_close(sliding_window(net, image, 32, mode=mode), net(image).detach(), rtol=0, atol=1e-5)


def test_image_smaller_than_window_is_padded_and_cropped_back():
    seen = []

    def predictor(batch):
        seen.append(tuple(batch.shape))
        return batch[:, :1] * 2

    image = torch.rand(1, 3, 10, 13)
    out = sliding_window(predictor, image, (16, 16))
    assert seen == [(1, 3, 16, 16)] and out.shape == (1, 1, 10, 13)
    torch.testing.assert_close(out, image[:, :1] * 2)


def test_batches_windows_and_covers_the_right_and_bottom_edges():
    sizes = []

    def predictor(batch):
        sizes.append(batch.shape[0])
        return torch.ones(batch.shape[0], 1, *batch.shape[-2:])

    out = sliding_window(predictor, torch.zeros(1, 1, 100, 100), 32, overlap=0.25, batch_size=5)
    assert sizes == [5, 5, 5, 1]                    # 4 x 4 = 16 windows
    assert torch.equal(out, torch.ones(1, 1, 100, 100))


def test_rejects_bad_inputs():
    net = torch.nn.Conv2d(1, 1, 1)
    with pytest.raises(TypeError):
        sliding_window(net, torch.zeros(1, 1, 8, 8, dtype=torch.uint8), 4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        sliding_window(net, torch.zeros(1, 8, 8), 4)
    with pytest.raises(ValueError, match="mode"):
        sliding_window(net, torch.zeros(1, 1, 8, 8), 4, mode="median")
    with pytest.raises(ValueError, match="window"):
        sliding_window(net, torch.zeros(1, 1, 8, 8), (4, 0))
    with pytest.raises(ValueError, match="predictor must return"):
        sliding_window(lambda b: b[:, :, :2], torch.zeros(1, 1, 8, 8), 4)
