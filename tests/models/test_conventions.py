"""One convention across the model builders: ``num_classes`` first, ``up=`` for the upsampling, ``min_size``."""

from __future__ import annotations

import pytest
import torch

from segcourse.models import deeplabv3, deeplabv3plus, fcn, unet


def test_num_classes_comes_first_everywhere():
    assert unet(3, depth=2, base_channels=2).num_classes == 3
    assert fcn(3, "32s", "vgg_tiny", width=4).num_classes == 3
    assert deeplabv3(3, width=4).num_classes == 3
    with pytest.raises(TypeError):
        unet(2, 3)  # in_channels is a keyword: unet(2, 3) must not silently mean something else


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
def test_fcn_and_unet_take_the_same_upsampling_option(up):
    assert unet(2, depth=2, base_channels=2, up=up).up_mode == up
    model = fcn(2, "16s", "vgg_tiny", width=4, up=up)
    assert {m.mode for m in model.up_skips} == {up}
    with pytest.raises(TypeError):
        fcn(2, "16s", "vgg_tiny", width=4, upsample=up)  # the old name is gone, not silently ignored
    with pytest.raises(ValueError, match="'transpose' or 'bilinear'"):
        fcn(2, "16s", "vgg_tiny", width=4, up="transposed")


@pytest.mark.parametrize("build", [
    lambda: unet(2, depth=3, base_channels=2),
    lambda: unet(2, depth=6, base_channels=1),
    lambda: fcn(2, "8s", "vgg_tiny", width=4),
    lambda: deeplabv3(2, width=4),
    lambda: deeplabv3plus(2, width=4),
], ids=["unet-d3", "unet-d6", "fcn", "deeplabv3", "deeplabv3plus"])
def test_every_model_accepts_its_min_size_and_refuses_one_less(build):
    model = build().eval()
    n = model.min_size
    with torch.no_grad():
        assert model(torch.zeros(1, 3, n, n + 3)).shape == (1, 2, n, n + 3)
        with pytest.raises(ValueError, match=str(n)):
            model(torch.zeros(1, 3, n - 1, n + 3))
