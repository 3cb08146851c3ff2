"""Lesson 08's Mask R-CNN trained on boxes with continuous edges vs pixel indices: mask AP on held-out cells.

The course's instance targets (:mod:`segcourse.data.instances`) are continuous edges, ``masks_to_boxes``
plus one. This script trains the lesson's model with the lesson's quick schedule (256 images of 96 px,
3 epochs, the same seeds) twice per seed: once on those targets (``offset 0``) and once on the pixel
indices of ``masks_to_boxes`` (``offset -1``, torchvision's PennFudan tutorial), and prints the mask AP of
each on the lesson's 48 held-out images, per IoU threshold too. The instructor notes quote its result.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/box_convention.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch.utils.data import DataLoader

from segcourse import seed_everything
from segcourse.data.instances import InstanceAugment, instance_dataset
from segcourse.metrics import mask_ap
from segcourse.models.maskrcnn import mask_rcnn, predict
from segcourse.train import DetectionTask, detection_collate, fit


class ShiftCorners:
    """``transform(image, target)``: the inner transform, then ``offset`` added to the boxes' ``x2, y2``."""

    def __init__(self, inner, offset: float):
        self.inner, self.offset = inner, offset

    def __call__(self, image, target):
        if self.inner is not None:
            image, target = self.inner(image, target)
        return image, {**target, "boxes": target["boxes"] + torch.tensor([0.0, 0.0, self.offset, self.offset])}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    size = 96
    test = instance_dataset("cells", "test", count=48, size=size)
    images, targets = [test[i][0] for i in range(len(test))], [test[i][1] for i in range(len(test))]
    for seed in args.seeds:
        for offset in (0.0, -1.0):
            seed_everything(seed)
            train = instance_dataset("cells", "train", count=256, size=size, transform=ShiftCorners(InstanceAugment(), offset))
            val = instance_dataset("cells", "val", count=12, size=size, transform=ShiftCorners(None, offset))
            net = mask_rcnn(image_size=size, width=16, anchor_sizes=(16, 32), aspect_ratios=(0.5, 1.0, 2.0))
            start = time.time()
            fit(net, DataLoader(train, batch_size=2, shuffle=True, collate_fn=detection_collate),
                DataLoader(val, batch_size=4, collate_fn=detection_collate), task=DetectionTask(), epochs=args.epochs,
                lr=2e-3, scheduler="cosine", clip_grad_norm=10.0, progress=False, verbose=False, seed=seed)
            ap = mask_ap(predict(net, images), targets, mask_threshold=0.5)
            print(f"seed {seed} offset {offset:+.0f}: mask AP {ap['map']:.4f}, AP50 {ap['map_50']:.4f}, "
                  f"AP75 {ap['map_75']:.4f}; per IoU {np.round(ap['ap_per_iou'], 3).tolist()} ({time.time() - start:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
