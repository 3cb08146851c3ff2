"""Batch-level augmentation for tensor data sets: a ``collate_fn`` for :class:`torch.utils.data.DataLoader`.

The lessons that train on tensors already in memory (lesson 10's tiles, lesson 11's folds) augment whole batches
with flips: cheap, and a flip moves the image and the mask the same way without inventing class ids (lesson 02's
rule). The albumentations pipelines of :mod:`segcourse.data.augment` are for per-sample numpy images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def random_flips(seed: int) -> Callable[[Sequence[tuple[torch.Tensor, torch.Tensor]]], tuple[torch.Tensor, torch.Tensor]]:
    """A collate function that flips each batch left-right and/or up-down at random, images and masks alike.

    Args:
        seed: seeds the collate function's own ``torch.Generator``, so the flips repeat from run to run
            whatever else draws random numbers.

    Returns:
        ``collate(batch)`` for a list of ``(image (C, H, W) float, mask (H, W) int64)`` pairs, returning
        ``(images (N, C, H, W), masks (N, H, W))``: stacked, then flipped along the width with probability 0.5
        and, independently, along the height with probability 0.5 (two draws per batch, in that order).

    >>> collate = random_flips(0)
    >>> images, masks = collate([(torch.zeros(3, 4, 5), torch.zeros(4, 5, dtype=torch.long))] * 2)
    >>> tuple(images.shape), tuple(masks.shape)
    ((2, 3, 4, 5), (2, 4, 5))
    """
    generator = torch.Generator().manual_seed(seed)

    def collate(batch):
        images, masks = torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])
        for dims in ((-1,), (-2,)):
            if torch.rand(1, generator=generator) < 0.5:
                images, masks = images.flip(dims), masks.flip(dims)
        return images, masks

    return collate
