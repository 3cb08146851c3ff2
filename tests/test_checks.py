"""The package's shared argument checks: one exception type per kind of mistake, everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcourse._checks import as_binary_mask, check_int


def test_check_int_type_and_value():
    assert check_int(np.int64(3), "n") == 3 and type(check_int(np.int64(3), "n")) is int
    assert check_int(0, "n", minimum=0) == 0
    for bad in (2.0, "2", True, None):
        with pytest.raises(TypeError, match="n must be an int"):
            check_int(bad, "n")
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        check_int(0, "n")
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        check_int(1, "n", minimum=2)


def _num_classes_checks():
    from segcourse.data import SegmentationFolder
    from segcourse.data.stats import class_statistics
    from segcourse.metrics import ConfusionMatrix, confusion_matrix
    from segcourse.models import unet
    from segcourse.models.backbones import resnet_tiny, vgg_tiny
    from segcourse.models.deeplab import DeepLabV3, DeepLabV3Plus
    from segcourse.models.fcn import FCN

    labels = torch.zeros(4, dtype=torch.long)
    yield "confusion_matrix", lambda k: confusion_matrix(labels, labels, k)
    yield "ConfusionMatrix", lambda k: ConfusionMatrix(k)
    yield "class_statistics", lambda k: class_statistics([np.zeros((2, 2), np.int64)], k)
    yield "SegmentationFolder", lambda k: SegmentationFolder(".", num_classes=k)
    yield "unet", lambda k: unet(num_classes=k)
    yield "DeepLabV3", lambda k: DeepLabV3(resnet_tiny(4), k)
    yield "DeepLabV3Plus", lambda k: DeepLabV3Plus(resnet_tiny(4), k)
    yield "FCN", lambda k: FCN(vgg_tiny(4), k)


@pytest.mark.parametrize("name, build", list(_num_classes_checks()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_same_bad_num_classes_raises_the_same_exception_everywhere(name, build):
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        build(0)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        build(2.0)


def test_as_binary_mask_one_policy():
    mask = np.array([[True, False], [False, True]])
    assert as_binary_mask(mask) is mask
    for same in (mask.astype(np.uint8), mask.astype(np.float32), torch.from_numpy(mask), mask.astype(int).tolist()):
        out = as_binary_mask(same)
        assert out.dtype == bool and np.array_equal(out, mask)
    with pytest.raises(ValueError, match="threshold it first"):
        as_binary_mask(mask * 0.5)
    with pytest.raises(ValueError, match="labels == class_id"):
        as_binary_mask(mask * 255)
    with pytest.raises(ValueError, match=r"2-D \(H, W\)"):
        as_binary_mask(mask[None])
    assert as_binary_mask(mask[None], ndim=None).shape == (1, 2, 2)
    with pytest.raises(TypeError, match="binary mask"):
        as_binary_mask(np.array([["a", "b"]]))
