"""Course backbones: the tiny encoders of lessons 03 and 05, pre-trained once here and cached.

Real segmentation networks start from an encoder pre-trained on ImageNet. No weights can be
downloaded on the machines this course runs on, so the course makes its own stand-in: each tiny
encoder is trained once on the course's *other* synthetic set than the lesson that uses it
evaluates on, then reused by every run of the lesson (every seed, every variant), exactly as
ImageNet weights are reused:

================  ==============================  =========================  ==================
encoder           pre-trained as                  on                         used by
================  ==============================  =========================  ==================
``vgg_tiny``      the encoder of an FCN-8s        ``shapes-multiscale``      lesson 03 (``shapes``)
``resnet_tiny``   the encoder of a DeepLabV3+     ``shapes``                 lesson 05 (``shapes-multiscale``)
================  ==============================  =========================  ==================

Only the encoder's weights are kept (the head and decoder of the pre-training network are thrown
away, as an ImageNet classifier's ``fc`` is). The lessons then show what this buys as a paired
comparison (from scratch against pre-trained, same seeds), which no course that downloads its
weights can show honestly.

Cache: ``data_root()/backbones/<name>-<mode>-<fingerprint>.safetensors`` (written atomically by
:func:`~segcourse.train.checkpoint.save_checkpoint`; the JSON config inside records the recipe,
the validation mIoU of the pre-training network and the build time). The fingerprint hashes the
recipe, the source of the modules that define the encoder and the pre-training network, the functions
here that build and train it, and the dataset generator's fingerprint: editing any of them rebuilds the encoder instead
of silently reusing a stale one. Building is deterministic (fixed seed) on one machine; on
another CPU the floating-point result differs, as every training does.

**The quick-mode backbones are committed** (``datasets/backbones/*-quick-*.safetensors``, 3.5 MB), as
downloaded ImageNet weights are one fixed file for everyone: pre-training them again on another CPU gives
other weights (floating point differs between CPUs) and moves lessons 03 and 05's results by more than the
seed-to-seed spread the quality gate allows (measured: pre-trained with another seed, FCN-8s mIoU moved
0.02 and its boundary IoU 0.03). A test fails when the committed copies no longer match the code and
recipe (their fingerprint): then run ``make backbones``, commit ``datasets/backbones/`` and re-store
lessons 03 and 05. Smoke- and full-mode backbones are built where they are used and never committed.
Building a new version of an encoder removes the older versions of the same encoder and mode from the
folder, so it holds one file per encoder and mode.

``python -m segcourse backbones build`` (``make backbones``) builds them for the current mode;
``make course`` builds them before the lessons and reports the time. A lesson that finds none
cached builds it, saying so (:func:`course_backbone`): it never silently trains without one.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..config import MODES, get_mode, seed_everything
from ..constants import IGNORE_INDEX
from ..data import load_arrays
from ..data.catalog import get_info
from ..data.paths import data_root
from ..data.synthetic import generator_fingerprint
from ..models.backbones import Encoder, get_backbone
from ..models.deeplab import deeplabv3plus
from ..models.fcn import fcn
from .checkpoint import load_checkpoint, save_checkpoint
from .epoch import evaluate
from .fit import fit

__all__ = ["BackboneRecipe", "RECIPES", "recipe", "backbone_path", "build_course_backbone", "course_backbone",
           "images_to_tensors"]

#: the pre-training seed: fixed, and not shifted by ``$SEGCOURSE_SEED_OFFSET`` (downloaded weights do not change
#: with the seeds of an experiment either)
PRETRAIN_SEED = 1234


@dataclass(frozen=True)
class BackboneRecipe:
    """How one course encoder is pre-trained in one mode.

    Attributes:
        name: the encoder (``"vgg_tiny"`` or ``"resnet_tiny"``), built with ``width``.
        network: the pre-training network around it (``"fcn8s"`` or ``"deeplabv3plus"``).
        dataset: the synthetic set it is pre-trained on.
        used_by: the lesson that uses it, and the set that lesson evaluates on.
        size, count, epochs, batch, lr: the training run (AdamW, "poly" schedule, cross-entropy).
        width: the encoder's base width.
    """

    name: str
    network: str
    dataset: str
    used_by: str
    size: int
    count: int
    epochs: int
    batch: int
    lr: float
    width: int = 16


def _recipes(size: int, count: int, epochs: int, rsize: int, rcount: int, repochs: int) -> dict[str, BackboneRecipe]:
    return {
        "vgg_tiny": BackboneRecipe("vgg_tiny", "fcn8s", "shapes-multiscale", "lesson 03 (shapes)", size, count,
                                   epochs, batch=16, lr=3e-3),
        "resnet_tiny": BackboneRecipe("resnet_tiny", "deeplabv3plus", "shapes", "lesson 05 (shapes-multiscale)",
                                      rsize, rcount, repochs, batch=16, lr=3e-3),
    }


#: mode -> encoder name -> recipe. Smoke mode: a few steps, so that every cell runs in seconds.
RECIPES: dict[str, dict[str, BackboneRecipe]] = {
    "smoke": _recipes(64, 16, 1, 64, 16, 1),
    "quick": _recipes(96, 2048, 15, 64, 4096, 20),
    "full": _recipes(128, 8000, 30, 128, 8000, 30),
}


def recipe(name: str, mode: str | None = None) -> BackboneRecipe:
    """The :class:`BackboneRecipe` of encoder ``name`` in ``mode`` (default: the current mode).

    Raises:
        ValueError: an unknown encoder or mode.
    """
    mode = mode or get_mode()
    if mode not in RECIPES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if name not in RECIPES[mode]:
        raise ValueError(f"no course backbone named {name!r}; the course pre-trains {', '.join(RECIPES[mode])}")
    return RECIPES[mode][name]


def _source(obj) -> str:
    return inspect.getsource(obj)


def fingerprint(r: BackboneRecipe) -> str:
    """16 hex characters: a hash of the recipe, the code that builds and trains it, and its data's generator."""
    digest = hashlib.sha256(json.dumps(asdict(r), sort_keys=True).encode())
    for func in (get_backbone, fcn, deeplabv3plus):  # the modules that define the encoders and the networks
        digest.update(_source(sys.modules[func.__module__]).encode())
    for func in (_encoder, _network, images_to_tensors, build_course_backbone):  # how they are trained here
        digest.update(_source(func).encode())
    digest.update(generator_fingerprint(r.dataset).encode())
    return digest.hexdigest()[:16]


def backbone_path(name: str, mode: str | None = None) -> Path:
    """Where encoder ``name`` of ``mode`` is cached (the file may not exist yet)."""
    mode = mode or get_mode()
    r = recipe(name, mode)
    return data_root() / "backbones" / f"{name}-{mode}-{fingerprint(r)}.safetensors"


def images_to_tensors(arrays: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``load_arrays`` output -> ``images (N, 3, H, W) float`` in [0, 1] and ``masks (N, H, W) int64``."""
    images = torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).float() / 255
    return images, torch.from_numpy(arrays["masks"]).long()


def _encoder(r: BackboneRecipe) -> Encoder:
    return get_backbone(r.name, width=r.width)


def _network(r: BackboneRecipe, num_classes: int) -> nn.Module:
    """The pre-training network: a fresh encoder of the recipe with a head and decoder around it."""
    if r.network == "fcn8s":
        return fcn(num_classes, "8s", _encoder(r), dropout=0.1)
    if r.network == "deeplabv3plus":
        return deeplabv3plus(num_classes, _encoder(r), aspp_channels=64, decoder_channels=32,
                                            atrous_rates=(1, 2, 3), dropout=0.1)
    raise ValueError(f"unknown pre-training network {r.network!r}")


def build_course_backbone(name: str, mode: str | None = None, *, force: bool = False,
                          log: Callable[[str], None] = print) -> Path:
    """Pre-train encoder ``name`` for ``mode`` and cache it; returns the cached file.

    Nothing happens when a current copy is cached (unless ``force``). The pre-training network's
    mIoU on the validation split of its own dataset is stored with the weights.
    """
    mode = mode or get_mode()
    r = recipe(name, mode)
    path = backbone_path(name, mode)
    if path.exists() and not force:
        return path
    log(f"pre-training the course backbone {name} ({mode} mode): the encoder of a {r.network} trained on "
        f"{r.count} {r.dataset} images of {r.size} px for {r.epochs} epoch(s), once; it is cached in {path.parent}")
    start = time.perf_counter()
    num_classes = get_info(r.dataset).num_classes
    x, y = images_to_tensors(load_arrays(r.dataset, "train", count=r.count, size=r.size))
    xv, yv = images_to_tensors(load_arrays(r.dataset, "val", size=r.size))
    mean, std = x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)
    x, xv = (x - mean) / std, (xv - mean) / std
    seed_everything(PRETRAIN_SEED, offset=False)
    network = _network(r, num_classes)
    loader = DataLoader(TensorDataset(x, y), batch_size=r.batch, shuffle=True)
    fit(network, loader, loss_fn=nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX), num_classes=num_classes,
        epochs=r.epochs, lr=r.lr, scheduler="poly", progress=False, verbose=False,
        channels_last="on", device="cpu" if mode != "full" else "auto")
    val_miou = evaluate(network, DataLoader(TensorDataset(xv, yv), batch_size=128), num_classes)["miou"]
    seconds = time.perf_counter() - start
    config = {"course_backbone": asdict(r), "mode": mode, "fingerprint": fingerprint(r),
              "pretrain_val_miou": round(float(val_miou), 4), "seconds": round(seconds, 1),
              "torch": torch.__version__, "image_mean": mean.flatten().tolist(), "image_std": std.flatten().tolist()}
    save_checkpoint(path, network.encoder, config=config)
    for stale in path.parent.glob(f"{name}-{mode}-*.safetensors"):  # older code or recipes: one file per encoder
        if stale != path:
            stale.unlink()
    log(f"course backbone {name}: pre-training mIoU {val_miou:.3f} on {r.dataset} (val), {seconds:.0f} s")
    return path


def course_backbone(name: str, mode: str | None = None, *, verbose: bool = True) -> Encoder:
    """A fresh encoder ``name`` holding the course's pre-trained weights (built first if none are cached).

    Args:
        name: ``"vgg_tiny"`` or ``"resnet_tiny"``.
        mode: the recipe's mode (default: the current mode).
        verbose: print where the weights come from.

    Returns:
        The encoder (``width`` of the recipe); ``encoder.pretrained_loaded`` is ``True``, and
        ``encoder.image_mean`` / ``encoder.image_std`` ``(1, 3, 1, 1)`` are the per-channel statistics of the
        images it was pre-trained on (of ``images_to_tensors``' [0, 1] scale): normalise with these.
    """
    mode = mode or get_mode()
    path = build_course_backbone(name, mode)
    encoder = _encoder(recipe(name, mode))
    loaded = load_checkpoint(path, encoder)
    encoder.pretrained_loaded = True
    # the image statistics it was pre-trained with: normalise a lesson's images with these, as with ImageNet's
    encoder.image_mean = torch.tensor(loaded.config["image_mean"]).view(1, 3, 1, 1)
    encoder.image_std = torch.tensor(loaded.config["image_std"]).view(1, 3, 1, 1)
    if verbose:
        cfg = loaded.config
        r = cfg["course_backbone"]
        print(f"course backbone {name}: pre-trained as a {r['network']} on {r['count']} {r['dataset']} images "
              f"({r['epochs']} epochs, {r['size']} px; that network's val mIoU {cfg['pretrain_val_miou']:.3f})")
    return encoder


# ------------------------------------------------------------------------------------------ command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build", "list"], help="build the cached encoders, or list them")
    parser.add_argument("--mode", choices=MODES, default=None, help="the recipes' mode (default: the current mode)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a current copy is cached")


def run(args: argparse.Namespace) -> int:
    mode = args.mode or get_mode()
    for name in RECIPES[mode]:
        if args.action == "build":
            build_course_backbone(name, mode, force=args.force)
        path = backbone_path(name, mode)
        print(f"{name:12s} {mode:6s} {'cached' if path.exists() else 'not built'}  {path}")
    return 0
