"""The course's small Mask R-CNN: built offline, trains through fit (empty images included), scored like pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from segcourse import seed_everything
from segcourse.data.instances import InstanceAugment, instance_dataset, target_from_instances
from segcourse.metrics import mask_ap
from segcourse.models.maskrcnn import mask_rcnn, predict
from segcourse.train import DetectionTask, detection_collate, fit

from coco_reference import coco_segm


@pytest.fixture()
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_builds_offline_and_keeps_the_image_size(no_download):
    model = mask_rcnn(image_size=64)
    assert model.transform.min_size == (64,) and model.transform.max_size == 64
    model.eval()
    out = model([torch.rand(3, 64, 64)])[0]
    n = len(out["scores"])
    assert out["boxes"].shape == (n, 4) and out["masks"].shape == (n, 1, 64, 64) and out["masks"].dtype == torch.float32


def test_second_stage_is_sized_for_a_cpu():
    model = mask_rcnn(image_size=64)
    heads = model.roi_heads
    assert heads.fg_bg_sampler.batch_size_per_image == 32 and heads.fg_bg_sampler.positive_fraction == 0.25
    assert heads.box_roi_pool.sampling_ratio == 0 and heads.mask_roi_pool.sampling_ratio == 0
    custom = mask_rcnn(image_size=64, box_batch_size_per_image=128, sampling_ratio=2)
    assert custom.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    assert custom.roi_heads.box_roi_pool.sampling_ratio == 2 and custom.roi_heads.mask_roi_pool.sampling_ratio == 2


def test_resnet50_variant_builds_without_weights(no_download):
    from segcourse.models.maskrcnn import mask_rcnn_resnet50

    model = mask_rcnn_resnet50(num_classes=2)
    assert sum(p.numel() for p in model.parameters()) > 40e6


def test_empty_images_train_through_fit(tmp_path):
    seed_everything(0)
    ds = instance_dataset("cells", "train", count=3, size=64, transform=InstanceAugment())
    empty_image = torch.rand(3, 64, 64) * 0.1
    empty = target_from_instances(torch.zeros(64, 64, dtype=torch.int64))
    items = [ds[i] for i in range(3)] + [(empty_image, empty)]
    loader = DataLoader(items, batch_size=2, collate_fn=detection_collate)
    only_empty = DataLoader([(empty_image, empty)] * 2, batch_size=2, collate_fn=detection_collate)
    model = mask_rcnn(image_size=64)
    model.train()
    losses = model([empty_image, empty_image], [empty, empty])     # a batch without any object
    assert all(torch.isfinite(v.detach()) for v in losses.values()) and float(losses["loss_mask"].detach()) == 0.0
    history = fit(model, loader, only_empty, task=DetectionTask(), epochs=1, device="cpu",
                  progress=False, verbose=False, checkpoint=tmp_path / "m.safetensors")
    rec = history.records[-1]
    assert rec["train_loss"] == rec["train_loss"] and rec["val_loss"] == rec["val_loss"]   # not NaN
    assert (tmp_path / "m.safetensors").exists()


def test_mask_ap_on_the_models_predictions_equals_pycocotools():
    seed_everything(1)
    ds = instance_dataset("cells", "val", count=3, size=64)
    model = mask_rcnn(image_size=64, score_thresh=0.0)   # untrained: many low-score, overlapping detections
    images, targets = zip(*[ds[i] for i in range(3)])
    preds = predict(model, list(images))
    assert any(len(p["scores"]) for p in preds)
    got = mask_ap(preds, list(targets), mask_threshold=0.5)
    ref = coco_segm(preds, list(targets), 0.5)
    assert got["map"] == pytest.approx(ref[0], abs=1e-12) and got["map_50"] == pytest.approx(ref[1], abs=1e-12)


def test_label_maps_and_watershed_helpers():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segcourse.classical import watershed_labels
    from segcourse.data import generate
    from segcourse.detection.evaluate import draw_instances, labels_to_prediction, to_label_map

    masks = torch.zeros(3, 1, 8, 8)
    masks[0, 0, :4, :4] = 0.9
    masks[1, 0, 2:6, 2:6] = 0.8      # overlaps the first: its overlap goes to the higher score
    masks[2, 0, 6:, 6:] = 0.9
    labels = to_label_map({"masks": masks, "scores": torch.tensor([0.6, 0.95, 0.3])})
    assert labels[3, 3] == 1 and labels[0, 0] == 2 and labels[7, 7] == 0    # third below score 0.5
    pred = labels_to_prediction(labels)
    assert pred["masks"].shape == (2, 8, 8) and pred["scores"].tolist() == [1.0, 1.0]
    s = generate("cells", 5, size=64)
    ws = watershed_labels(s.image)
    assert ws.shape == (64, 64) and ws.max() >= 1
    assert (watershed_labels(torch.from_numpy(s.image).permute(2, 0, 1).float() / 255) == ws).all()
    fig, ax = plt.subplots()
    counts = draw_instances(ax, s.image, ws, s.instances.astype(np.int32), boxes=[[1, 1, 5, 5]], scores=[0.5])
    plt.close(fig)
    assert counts["tp"] + counts["fn"] == len(np.unique(s.instances)) - 1


def test_replace_predictors_keeps_the_rest_and_trains(no_download):
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    from segcourse.models.maskrcnn import replace_predictors

    seed_everything(0)
    model = mask_rcnn(image_size=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    replace_predictors(model, num_classes=4)
    assert model.roi_heads.box_predictor.cls_score.out_features == 4
    assert model.roi_heads.box_predictor.bbox_pred.out_features == 16
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 4
    after = model.state_dict()
    kept = [k for k in before if "predictor" not in k]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)
    ds = instance_dataset("shapes", "val", count=2, size=64)
    images, targets = detection_collate([ds[0], ds[1]])
    model.train()
    losses = model(list(images), list(targets))
    sum(losses.values()).backward()
    assert model.roi_heads.mask_predictor.mask_fcn_logits.weight.grad is not None
    model.eval()
    out = model([images[0]])[0]
    assert out["masks"].shape[1:] == (1, 64, 64) and (out["labels"] < 4).all()
    big = replace_predictors(maskrcnn_resnet50_fpn(weights=None, weights_backbone=None), 3)
    assert big.roi_heads.box_predictor.cls_score.out_features == 3
    with pytest.raises(ValueError, match="background"):
        replace_predictors(model, 1)
