"""SAM's loss: its focal and Dice terms against torchvision and Hugging Face ``transformers``; the
best-of-K rule; the IoU target."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss
from transformers.models.mask2former.modeling_mask2former import dice_loss as hf_dice_loss

from segcourse.losses.promptable import mask_iou, per_mask_dice, per_mask_focal, sam_loss


def _case(seed, b=2, k=3, size=9):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, size, size, generator=g) * 3, (torch.rand(b, k, size, size, generator=g) < 0.3).float()


@pytest.mark.parametrize("seed", [0, 1])
def test_per_mask_focal_equals_torchvision_averaged_per_mask(seed):
    logits, target = _case(seed)
    want = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="none").flatten(2).mean(-1)
    torch.testing.assert_close(per_mask_focal(logits, target), want)


@pytest.mark.parametrize("seed", [0, 1])
def test_per_mask_dice_equals_transformers_for_one_mask(seed):
    logits, target = _case(seed)
    for b in range(2):
        for k in range(3):
            want = hf_dice_loss(logits[b, k][None].flatten(1), target[b, k][None].flatten(1), num_masks=1)
            torch.testing.assert_close(per_mask_dice(logits, target)[b, k], want)


def test_mask_iou_by_hand():
    logits = torch.tensor([[[[1.0, 1.0], [-1.0, -1.0]], [[-1.0, -1.0], [-1.0, -1.0]]]])   # (1, 2, 2, 2)
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]).expand(1, 2, 2, 2)
    # mask 0: {a, b} vs {a}: 1/2; mask 1: empty vs {a}: 0/1
    torch.testing.assert_close(mask_iou(logits, target), torch.tensor([[0.5, 0.0]]))
    torch.testing.assert_close(mask_iou(-torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)), torch.tensor([[1.0]]))


def test_only_the_best_mask_gets_a_gradient_and_the_iou_head_learns_every_mask():
    logits, _ = _case(2, b=1)
    target = (logits[0, 1] > 0).float()[None]          # mask 1 is exactly right: it is the best
    logits.requires_grad_(True)
    iou_pred = torch.zeros(1, 3, requires_grad=True)
    out = sam_loss(logits, iou_pred, target)
    assert out["best"].tolist() == [1]
    out["loss"].backward()
    assert logits.grad[0, 1].abs().sum() > 0 and logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0
    assert (iou_pred.grad != 0).all()
    want = 20 * per_mask_focal(logits, target[:, None].expand_as(logits))[0, 1] + per_mask_dice(logits, target[:, None].expand_as(logits))[0, 1]
    torch.testing.assert_close(out["loss"] - out["iou_mse"], want)


def test_sam_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="iou_pred"):
        sam_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="target"):
        sam_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3), torch.zeros(1, 5, 4))
