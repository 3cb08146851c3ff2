"""segcourse.data.collate.random_flips: a batch flip moves images and masks together, repeatably."""

import torch

from segcourse.data.collate import random_flips


def _batch():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(4, 3, 6, 7, generator=g)
    masks = torch.randint(0, 3, (4, 6, 7), generator=g)
    return [(images[i], masks[i]) for i in range(4)], images, masks


def test_flips_images_and_masks_the_same_way_and_only_by_flips():
    batch, images, masks = _batch()
    collate = random_flips(0)
    seen = set()
    for _ in range(40):
        out_images, out_masks = collate(batch)
        candidates = {(w, h): (images.flip(-1) if w else images, masks.flip(-1) if w else masks)
                      for w in (False, True) for h in (False, True)}
        candidates = {k: (i.flip(-2) if k[1] else i, m.flip(-2) if k[1] else m) for k, (i, m) in candidates.items()}
        matches = [k for k, (i, m) in candidates.items() if torch.equal(out_images, i) and torch.equal(out_masks, m)]
        assert len(matches) == 1, "the output must be the batch flipped one way, images and masks together"
        seen.add(matches[0])
    assert seen == {(False, False), (False, True), (True, False), (True, True)}, f"40 batches drew only {seen}"


def test_same_seed_same_flips_whatever_the_global_rng():
    batch, _, _ = _batch()
    first, second = random_flips(3), random_flips(3)
    for _ in range(10):
        torch.rand(5)                                   # the global generator does not steer the flips
        a, b = first(batch), second(batch)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
