"""Lesson 12's training with simulated clicks, on tiny cases: objects and their touching groups, batches,
one optimisation step through fit's task interface, the benchmark loop and the classical baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcourse.metrics.interactive import simulate
from segcourse.models.promptable import promptable_segmenter
from segcourse.train.promptable import (
    ObjectBatches,
    PromptableTask,
    baseline_curves,
    click_curves,
    concat_objects,
    interactive_objects,
    objects_from_arrays,
    sample_click,
    tune_tolerance,
)


def _two_images():
    """Image 0: two touching squares (ids 1, 2) and a lone one (3); image 1: one square (1). 16 x 16."""
    inst = np.zeros((2, 16, 16), np.int64)
    inst[0, 2:7, 2:7] = 1
    inst[0, 2:7, 7:12] = 2
    inst[0, 10:15, 10:15] = 3
    inst[1, 4:12, 4:12] = 1
    images = np.zeros((2, 16, 16, 3), np.uint8)
    images[inst == 1] = 200
    images[inst == 2] = 120
    images[inst == 3] = 90
    return images, inst


def test_objects_know_their_touching_group():
    obj = objects_from_arrays(*_two_images(), min_pixels=5)
    assert len(obj) == 4 and obj.area.tolist() == [25, 25, 25, 64]
    assert obj.is_ambiguous(0) and obj.is_ambiguous(1) and not obj.is_ambiguous(2)
    assert obj.whole(0).sum() == 50 and (obj.whole(0) == obj.whole(1)).all()
    assert obj.images.shape == (2, 3, 16, 16) and obj.images.max() <= 1


def test_object_batches_shapes_and_the_whole_target():
    obj = objects_from_arrays(*_two_images(), min_pixels=5)
    images, target, instance = next(iter(ObjectBatches(obj, 4, whole_prob=1.0, hflip=False, shuffle=False)))
    assert images.shape == (4, 3, 16, 16) and target.shape == instance.shape == (4, 16, 16)
    assert target[0].sum() == 50 and instance[0].sum() == 25 and target[2].sum() == 25   # the lone square has no whole


def test_sample_click_stays_in_the_error_region():
    target = np.zeros((10, 10), bool)
    target[2:8, 2:8] = True
    pred = np.zeros((10, 10), bool)
    rng = np.random.default_rng(0)
    for _ in range(20):
        r, c, positive = sample_click(pred, target, rng, centre_prob=0.0)
        assert positive and target[r, c]


def test_one_training_step_through_the_task_lowers_nothing_to_nan():
    torch.manual_seed(0)
    obj = objects_from_arrays(*_two_images(), min_pixels=5)
    model = promptable_segmenter()
    task = PromptableTask(clicks=3)
    batch = task.to_device(next(iter(ObjectBatches(obj, 4))), torch.device("cpu"), None)
    loss, parts = task.training_loss(model, batch)
    assert torch.isfinite(loss) and set(parts) == {"focal", "dice", "iou_mse"}
    loss.backward()
    assert all(p.grad is not None for p in model.mask_decoder.parameters() if p.requires_grad)


def test_click_curves_match_the_one_object_protocol():
    torch.manual_seed(1)
    obj = objects_from_arrays(*_two_images(), min_pixels=5)
    model = promptable_segmenter().eval()
    res = click_curves(model, obj, max_clicks=4, min_clicks=4)
    assert res["curves"].shape == (4, 4) and res["first_ious"].shape == (4, 3)

    def predict(clicks, i=1):
        pts = torch.tensor([[[c, r] for r, c, _ in clicks]], dtype=torch.float32)
        lbl = torch.tensor([[int(p) for _, _, p in clicks]])
        emb = model.embed(obj.images[obj.image_index[i]][None])
        masks, iou = model.decode(emb, pts, lbl, multimask=len(clicks) == 1)
        chosen = masks[0, int(iou[0].argmax())] if len(clicks) == 1 else masks[0, 0]
        return (chosen > 0).numpy()

    with torch.no_grad():
        want, _ = simulate(predict, obj.mask(1), max_clicks=4, min_clicks=4)
    np.testing.assert_allclose(res["curves"][1], want, atol=1e-6)


def test_the_flood_fill_baseline_solves_flat_squares_in_one_click():
    obj = objects_from_arrays(*_two_images(), min_pixels=5)
    curves = baseline_curves(obj, tolerance=10, max_clicks=3)
    assert curves.shape == (4, 3) and (curves[:, 0] == 1).all()
    best, scores = tune_tolerance(obj, grid=(10, 200), count=4, clicks=2)
    assert best == 10 and scores[10] > scores[200]


def test_task_rejects_bad_arguments():
    with pytest.raises(ValueError, match="clicks"):
        PromptableTask(clicks=0)
    with pytest.raises(TypeError, match="images, target, instance"):
        PromptableTask().to_device((1, 2), torch.device("cpu"), None)


def test_training_and_benchmark_with_mask_feedback():
    torch.manual_seed(2)
    obj = objects_from_arrays(*_two_images(), min_pixels=5)
    model = promptable_segmenter(mask_feedback=True)
    task = PromptableTask(clicks=3)
    loss, _ = task.training_loss(model, next(iter(ObjectBatches(obj, 4))))
    loss.backward()
    assert torch.isfinite(loss) and model.click_downscaling[0].weight.grad.abs().sum() > 0
    assert click_curves(model, obj, max_clicks=3, min_clicks=3)["curves"].shape == (4, 3)


def test_concat_objects_renumbers_images_and_keeps_every_mask():
    cells = interactive_objects("cells", "train", 3, 32)
    shapes = interactive_objects("shapes", "train", 2, 32)
    both = concat_objects(cells, shapes)
    assert len(both) == len(cells) + len(shapes) and len(both.images) == 5
    for i in range(len(cells)):
        np.testing.assert_array_equal(both.mask(i), cells.mask(i))
    for j in range(len(shapes)):
        np.testing.assert_array_equal(both.mask(len(cells) + j), shapes.mask(j))
        np.testing.assert_array_equal(both.whole(len(cells) + j), shapes.whole(j))
        torch.testing.assert_close(both.images[both.image_index[len(cells) + j]], shapes.images[shapes.image_index[j]])
    with pytest.raises(ValueError, match="one size"):
        concat_objects(cells, interactive_objects("shapes", "train", 1, 64))
    with pytest.raises(ValueError, match="at least one"):
        concat_objects()
