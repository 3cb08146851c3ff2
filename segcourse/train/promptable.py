"""Training and measuring the promptable segmenter with a simulated user (lesson 12).

* :func:`interactive_objects` -- class-agnostic objects of ``cells`` / ``shapes``: each instance, and its
  *whole* -- the connected group of touching objects it belongs to -- for ambiguous clicks;
* :class:`ObjectBatches` -- the training batches ``(images, target, instance)`` for
  :func:`~segcourse.train.fit`: the target is the instance, or (with ``whole_prob``) its whole group, so a
  click on one of two touching nuclei has two right answers, as a click on a part has in SAM;
* :class:`PromptableTask` -- SAM's training simulation: the image embedded once, then ``clicks`` rounds of
  decoding; the first click inside the instance with multi-mask output and :func:`~segcourse.losses.promptable.sam_loss`
  (best of the masks), each later click placed in the error of the previous prediction (positive in the
  missed pixels, negative in the false ones) with the single-mask output -- the losses of all rounds
  averaged;
* :func:`click_curves` (the model) and :func:`baseline_curves` (a flood fill) -- the evaluation protocol of
  :mod:`segcourse.metrics.interactive` on held-out objects: IoU after each of up to 20 clicks.

What differs from SAM's training (Kirillov et al. 2023, Appendix A): SAM samples the first prompt
uniformly inside the mask or as a noisy box, runs 11 rounds (8 sampled points, the previous mask fed back
as a prompt, two rounds with no new point) and trains on 11 M images; here 3 rounds, no mask feedback, a
first click at the object's centre half of the time (the point the benchmark clicks first), later clicks
at the error's centre or uniformly inside it (half each) -- cheap enough for a CPU in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ..classical import flood_from_clicks
from ..losses.promptable import sam_loss
from ..metrics import interactive as protocol
from ..models.promptable import NEGATIVE, POSITIVE, pick_mask


@dataclass
class InteractiveObjects:
    """Objects of a split, class-agnostic.

    Attributes:
        images: float ``(N, 3, H, W)`` in ``[0, 1]``; ``gray``: uint8 ``(N, H, W)`` (the channel mean, for
            the classical baseline); ``instances``: int64 ``(N, H, W)`` ids (0 = none); ``groups``: int64
            ``(N, H, W)`` ids of the connected groups of touching objects.
        image_index, instance_id, group_id, area: int64 ``(M,)``, one row per object (``area`` in pixels).
    """

    images: torch.Tensor
    gray: np.ndarray
    instances: np.ndarray
    groups: np.ndarray
    image_index: np.ndarray
    instance_id: np.ndarray
    group_id: np.ndarray
    area: np.ndarray

    def __len__(self) -> int:
        return len(self.image_index)

    def mask(self, i: int) -> np.ndarray:
        """Object ``i``'s ``(H, W)`` bool mask."""
        return self.instances[self.image_index[i]] == self.instance_id[i]

    def whole(self, i: int) -> np.ndarray:
        """The ``(H, W)`` bool mask of the group of touching objects that holds object ``i``."""
        return self.groups[self.image_index[i]] == self.group_id[i]

    def is_ambiguous(self, i: int) -> bool:
        """Whether object ``i`` touches another (its whole is more than itself)."""
        return bool((self.whole(i) & ~self.mask(i)).any())


def objects_from_arrays(images: np.ndarray, instances: np.ndarray, min_pixels: int = 20) -> InteractiveObjects:
    """:class:`InteractiveObjects` from uint8 ``(N, H, W, 3)`` images and ``(N, H, W)`` instance ids.

    Objects smaller than ``min_pixels`` are left out (a few-pixel sliver of an overlapped nucleus is not
    something a user would select).
    """
    images = np.asarray(images)
    instances = np.asarray(instances).astype(np.int64)
    if images.ndim != 4 or images.shape[-1] != 3 or instances.shape != images.shape[:3]:
        raise ValueError(f"images must be (N, H, W, 3) and instances (N, H, W); got {images.shape} and {instances.shape}")
    groups = np.stack([ndimage.label(inst > 0)[0] for inst in instances]).astype(np.int64)
    rows = []
    for n, inst in enumerate(instances):
        ids, areas = np.unique(inst[inst > 0], return_counts=True)
        for i, a in zip(ids.tolist(), areas.tolist()):
            if a >= min_pixels:
                r, c = np.argwhere(inst == i)[0]
                rows.append((n, i, int(groups[n, r, c]), a))
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return InteractiveObjects(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0,
        gray=np.round(images.astype(np.float64).mean(-1)).astype(np.uint8),
        instances=instances, groups=groups,
        image_index=table[:, 0], instance_id=table[:, 1], group_id=table[:, 2], area=table[:, 3])


def concat_objects(*parts: InteractiveObjects) -> InteractiveObjects:
    """The objects of several splits as one (e.g. ``cells`` and ``shapes`` for one class-agnostic training set).

    Images must share their size; image indices are renumbered and instance / group ids keep their images.
    """
    if not parts:
        raise ValueError("concat_objects needs at least one InteractiveObjects")
    sizes = {tuple(p.images.shape[1:]) for p in parts}
    if len(sizes) != 1:
        raise ValueError(f"objects to concatenate must have images of one size (C, H, W), got {sorted(sizes)}")
    offsets = np.cumsum([0] + [len(p.images) for p in parts[:-1]])
    return InteractiveObjects(
        images=torch.cat([p.images for p in parts]), gray=np.concatenate([p.gray for p in parts]),
        instances=np.concatenate([p.instances for p in parts]), groups=np.concatenate([p.groups for p in parts]),
        image_index=np.concatenate([p.image_index + o for p, o in zip(parts, offsets)]),
        instance_id=np.concatenate([p.instance_id for p in parts]), group_id=np.concatenate([p.group_id for p in parts]),
        area=np.concatenate([p.area for p in parts]))


def interactive_objects(name: str, split: str = "train", count: int | None = None, size: int = 64, seed: int = 0,
                        min_pixels: int = 20) -> InteractiveObjects:
    """The objects of a synthetic split (``cells`` or ``shapes``), class-agnostic (see :func:`objects_from_arrays`)."""
    from ..data.synthetic import load_arrays

    if name not in ("cells", "shapes", "shapes-multiscale"):
        raise ValueError(f"interactive objects come from 'cells' or 'shapes' (they have instance masks), got {name!r}")
    arrays = load_arrays(name, split, count=count, size=size, seed=seed)
    return objects_from_arrays(arrays["images"], arrays["instances"], min_pixels=min_pixels)


class ObjectBatches:
    """Training batches ``(images (B, 3, H, W), target (B, H, W), instance (B, H, W))`` float, one object a row.

    Each pass draws a new order of the objects and flips a random half of each batch horizontally, from
    its own generator (seeded with ``seed``). ``target`` is the instance, or with probability ``whole_prob``
    (for an object that touches others) the whole touching group: the ambiguous case.
    """

    def __init__(self, objects: InteractiveObjects, batch_size: int = 32, *, whole_prob: float = 0.25, hflip: bool = True,
                 shuffle: bool = True, seed: int = 0):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not 0 <= whole_prob <= 1:
            raise ValueError(f"whole_prob must be in [0, 1], got {whole_prob!r}")
        self.objects, self.batch_size, self.whole_prob = objects, batch_size, whole_prob
        self.hflip, self.shuffle = hflip, shuffle
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return (len(self.objects) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        obj = self.objects
        order = self.rng.permutation(len(obj)) if self.shuffle else np.arange(len(obj))
        for start in range(0, len(obj), self.batch_size):
            idx = order[start:start + self.batch_size]
            img = obj.image_index[idx]
            inst = obj.instances[img] == obj.instance_id[idx, None, None]
            whole = obj.groups[img] == obj.group_id[idx, None, None]
            use_whole = self.rng.random(len(idx)) < self.whole_prob
            target = np.where(use_whole[:, None, None], whole, inst)
            images = obj.images[torch.from_numpy(img)].clone()
            inst_t, target_t = torch.from_numpy(inst).float(), torch.from_numpy(target).float()
            if self.hflip:
                flip = torch.from_numpy(self.rng.random(len(idx)) < 0.5)
                images[flip] = images[flip].flip(-1)
                inst_t[flip] = inst_t[flip].flip(-1)
                target_t[flip] = target_t[flip].flip(-1)
            yield images, target_t, inst_t


def sample_click(pred: np.ndarray, target: np.ndarray, rng: np.random.Generator, centre_prob: float = 0.5) -> protocol.Click | None:
    """A training click in the larger error region (chosen as in :func:`~segcourse.metrics.interactive.next_click`):
    at its centre with probability ``centre_prob``, else at a uniformly drawn pixel of that region."""
    click = protocol.next_click(pred, target)
    if click is None or rng.random() < centre_prob:
        return click
    region = (target & ~pred) if click[2] else (pred & ~target)
    rows, cols = np.nonzero(region)
    j = int(rng.integers(len(rows)))
    return int(rows[j]), int(cols[j]), click[2]


def _as_points(clicks: list[list[protocol.Click]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row click lists of equal length -> points float ``(B, k, 2)`` ``(x, y)`` and labels int64 ``(B, k)``."""
    pts = torch.tensor([[[c, r] for r, c, _ in row] for row in clicks], dtype=torch.float32, device=device)
    lbl = torch.tensor([[POSITIVE if p else NEGATIVE for _, _, p in row] for row in clicks], dtype=torch.int64, device=device)
    return pts, lbl


class PromptableTask:
    """How :func:`~segcourse.train.fit` trains the promptable segmenter with simulated clicks (see the module).

    Args:
        clicks: rounds per training sample (SAM: 11; here 3).
        centre_prob: probability that a training click is at its region's centre (else uniform in it).
        seed: the clicks' own generator.
        val_clicks: the validation runs the benchmark protocol for this many clicks and records
            ``val_iou@1`` ... (its monitor is ``val_iou@1``).
        focal_weight, dice_weight: of :func:`~segcourse.losses.promptable.sam_loss` (SAM: 20 and 1).
    """

    monitor = "val_iou@1"
    mode = "max"
    parts = ("focal", "dice", "iou_mse")

    def __init__(self, clicks: int = 3, centre_prob: float = 0.5, seed: int = 0, val_clicks: int = 3,
                 focal_weight: float = 20.0, dice_weight: float = 1.0):
        if not isinstance(clicks, int) or clicks < 1:
            raise ValueError(f"clicks must be a positive int, got {clicks!r}")
        self.clicks, self.centre_prob, self.val_clicks = clicks, centre_prob, val_clicks
        self.focal_weight, self.dice_weight = focal_weight, dice_weight
        self.rng = np.random.default_rng(seed)

    def to_device(self, batch, device, precision):
        if not isinstance(batch, (tuple, list)) or len(batch) != 3:
            raise TypeError("a promptable loader must yield (images, target, instance), e.g. ObjectBatches(objects)")
        return tuple(t.to(device) for t in batch)

    def batch_size(self, batch) -> int:
        return len(batch[0])

    def _first_clicks(self, instance: np.ndarray) -> list[list[protocol.Click]]:
        out = []
        for m in instance:
            if self.rng.random() < self.centre_prob:
                out.append([protocol.first_click(m)])
            else:
                rows, cols = np.nonzero(m)
                j = int(self.rng.integers(len(rows)))
                out.append([(int(rows[j]), int(cols[j]), True)])
        return out

    def training_loss(self, model, batch):
        images, target, instance = batch
        embedding = model.embed(images)                                    # once per image
        target_np = target.detach().cpu().numpy() > 0.5
        clicks = self._first_clicks(instance.detach().cpu().numpy() > 0.5)
        total, parts = 0.0, {k: 0.0 for k in self.parts}
        previous = None
        for k in range(self.clicks):
            points, labels = _as_points(clicks, images.device)
            masks, iou_pred = model.decode(embedding, points, labels, multimask=(k == 0), mask_input=previous)
            out = sam_loss(masks, iou_pred, target, focal_weight=self.focal_weight, dice_weight=self.dice_weight)
            total = total + out["loss"] / self.clicks
            for name in self.parts:
                parts[name] = parts[name] + out[name].detach() / self.clicks
            if k + 1 < self.clicks:
                best_logits = masks.detach()[torch.arange(len(masks)), out["best"]]
                previous = torch.sigmoid(best_logits)[:, None]
                best = best_logits > 0
                for row, pred, tgt in zip(clicks, best.cpu().numpy(), target_np):
                    click = sample_click(pred, tgt, self.rng, self.centre_prob)
                    row.append(click if click is not None else row[-1])
        return total, parts

    @torch.no_grad()
    def evaluate(self, model, loader, *, device, precision, progress, dist_info, examples: int = 0) -> dict:
        """``iou@1`` ... ``iou@{val_clicks}`` of the benchmark protocol on the loader's objects (instances)."""
        curves = click_curves(model, loader.objects, max_clicks=self.val_clicks, min_clicks=self.val_clicks)["curves"]
        return {f"iou@{k}": float(curves[:, k - 1].mean()) for k in range(1, self.val_clicks + 1)} | {"images": len(curves)}


@torch.no_grad()
def click_curves(model, objects: InteractiveObjects, max_clicks: int = protocol.MAX_CLICKS, *, batch_size: int = 512,
                 stop_at: float = max(protocol.NOC_THRESHOLDS), min_clicks: int = 5) -> dict:
    """The benchmark protocol (:mod:`segcourse.metrics.interactive`) with the model, batched over objects.

    Each image is embedded once; each round decodes every unfinished object with its clicks so far: the
    first click with the multi-mask output, the mask of highest predicted IoU picked (SAM's rule for an
    ambiguous single click), later clicks with the single-mask output. An object stops as
    :func:`~segcourse.metrics.interactive.simulate` does (its last IoU carried forward).

    Returns:
        ``curves`` float ``(M, max_clicks)``; after the first click, ``first_ious`` float ``(M, K)`` (each
        mask's true IoU), ``first_pred`` float ``(M, K)`` (predicted IoUs) and ``picked`` int64 ``(M,)``.
    """
    was = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        embeddings = torch.cat([model.embed(objects.images[i:i + batch_size].to(device))
                                for i in range(0, len(objects.images), batch_size)])
        m = len(objects)
        curves = np.zeros((m, max_clicks))
        k_masks = model.mask_decoder.num_multimask_outputs
        first_ious, first_pred, picked = np.zeros((m, k_masks)), np.zeros((m, k_masks)), np.zeros(m, np.int64)
        for start in range(0, m, batch_size):
            idx = np.arange(start, min(start + batch_size, m))
            targets = objects.instances[objects.image_index[idx]] == objects.instance_id[idx, None, None]
            clicks = [[protocol.first_click(t)] for t in targets]
            active = np.ones(len(idx), bool)
            last = np.zeros(len(idx))
            previous = torch.zeros(len(idx), 1, *targets.shape[-2:], device=device)
            for k in range(max_clicks):
                rows = np.nonzero(active)[0]
                if len(rows) == 0:
                    curves[idx, k] = last
                    continue
                points, labels = _as_points([clicks[r] for r in rows], device)
                emb = embeddings[torch.from_numpy(objects.image_index[idx[rows]]).to(device)]
                masks, iou_pred = model.decode(emb, points, labels, multimask=(k == 0),
                                               mask_input=None if k == 0 else previous[torch.from_numpy(rows).to(device)])
                if k == 0:
                    chosen, best = pick_mask(masks, iou_pred)
                    all_masks = (masks > 0).cpu().numpy()
                    first_ious[idx] = [[protocol.mask_iou(mk, t) for mk in ms] for ms, t in zip(all_masks, targets)]
                    first_pred[idx] = iou_pred.cpu().numpy()
                    picked[idx] = best.cpu().numpy()
                else:
                    chosen = masks[:, 0]
                previous[torch.from_numpy(rows).to(device)] = torch.sigmoid(chosen)[:, None]
                preds = (chosen > 0).cpu().numpy()
                for r, pred in zip(rows, preds):
                    last[r] = protocol.mask_iou(pred, targets[r])
                    if k + 1 >= min_clicks and last[r] >= stop_at:
                        active[r] = False
                        continue
                    click = protocol.next_click(pred, targets[r])
                    if click is None:
                        active[r] = False
                    else:
                        clicks[r].append(click)
                curves[idx, k] = last
        return {"curves": curves, "first_ious": first_ious, "first_pred": first_pred, "picked": picked}
    finally:
        model.train(was)


def baseline_curves(objects: InteractiveObjects, tolerance: float, max_clicks: int = protocol.MAX_CLICKS,
                    indices=None) -> np.ndarray:
    """The same protocol with :func:`segcourse.classical.flood_from_clicks` on the grey image: float ``(M, max_clicks)``."""
    indices = range(len(objects)) if indices is None else indices
    rows = []
    for i in indices:
        gray = objects.gray[objects.image_index[i]]
        curve, _ = protocol.simulate(lambda clicks, g=gray: flood_from_clicks(g, clicks, tolerance), objects.mask(i), max_clicks)
        rows.append(curve)
    return np.array(rows).reshape(-1, max_clicks)


def tune_tolerance(objects: InteractiveObjects, grid=(4, 8, 12, 16, 24, 32, 48, 64), count: int = 150, clicks: int = 5,
                   seed: int = 0) -> tuple[float, dict]:
    """The flood-fill tolerance with the best mean IoU over the first ``clicks`` clicks on ``count`` objects
    drawn from ``objects`` (training objects: the baseline is tuned as fairly as the network is trained).

    Returns ``(best tolerance, {tolerance: score})``.
    """
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(objects), size=min(count, len(objects)), replace=False)
    scores = {float(t): float(baseline_curves(objects, t, max_clicks=clicks, indices=pick).mean()) for t in grid}
    return max(scores, key=scores.get), scores
