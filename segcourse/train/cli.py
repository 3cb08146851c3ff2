"""``python -m segcourse train MODEL --data NAME --out CKPT``: pre-train a lesson model.

An instructor runs this the night before a workshop (on a GPU in ``full`` mode, or a laptop
in ``quick`` mode) so that learners can load a trained model with
``segcourse.train.load_checkpoint(CKPT)`` instead of waiting for it. Examples::

    python -m segcourse train unet --data cells --out checkpoints/unet_cells.safetensors
    python -m segcourse train deeplabv3plus --data shapes --out ckpt/dlv3p.safetensors --mode full --epochs 40
    python -m segcourse train unet --data cells --out ckpt/u.safetensors --model-kwargs '{"base_channels": 32}'
    torchrun --nproc_per_node=4 -m segcourse train unet --data aerial --out ckpt/u.safetensors   # DDP

It trains on the synthetic split ``train`` and validates on ``val`` (generated in memory),
saves the best model by ``--monitor`` with a config that names the model builder and its
arguments (so the checkpoint rebuilds itself), and writes the history beside it as
``<CKPT stem>.history.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import MODES

#: small-but-useful model arguments per model and mode (smoke, quick, full); ``--model-kwargs`` overrides
PRESETS: dict[str, tuple[dict, dict, dict]] = {
    "unet": ({"depth": 3, "base_channels": 8}, {"depth": 4, "base_channels": 16}, {"depth": 4, "base_channels": 32}),
    "fcn": ({"variant": "8s", "backbone": "vgg_tiny", "width": 8},
            {"variant": "8s", "backbone": "vgg_tiny", "width": 16},
            {"variant": "8s", "backbone": "vgg_tiny", "width": 32}),
    "deeplabv3": ({"backbone": "resnet_tiny", "width": 8, "aspp_channels": 32, "atrous_rates": [2, 4, 6]},
                  {"backbone": "resnet_tiny", "width": 16, "aspp_channels": 64, "atrous_rates": [2, 4, 6]},
                  {"backbone": "resnet_tiny", "width": 32, "aspp_channels": 128}),
    "deeplabv3plus": ({"backbone": "resnet_tiny", "width": 8, "aspp_channels": 32, "decoder_channels": 32,
                       "atrous_rates": [2, 4, 6]},
                      {"backbone": "resnet_tiny", "width": 16, "aspp_channels": 64, "decoder_channels": 64,
                       "atrous_rates": [2, 4, 6]},
                      {"backbone": "resnet_tiny", "width": 32, "aspp_channels": 128, "decoder_channels": 128}),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model builder name: unet, fcn, deeplabv3, deeplabv3plus (or one you registered)")
    parser.add_argument("--data", required=True,
                        help="synthetic dataset: cells, shapes, shapes-multiscale, aerial, street")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint to write (.safetensors)")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="sizes and epochs (default: $SEGCOURSE_MODE, else full with CUDA / quick without)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default per mode: 1 / 15 / 40)")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds of training")
    parser.add_argument("--size", type=int, default=None,
                        help="image side in pixels (default: the dataset's for the mode)")
    parser.add_argument("--train-count", type=int, default=None, help="training images (default: the mode's)")
    parser.add_argument("--val-count", type=int, default=None, help="validation images (default: the mode's)")
    parser.add_argument("--batch-size", type=int, default=None, help="default per mode: 4 / 16 / 16")
    parser.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate (default 3e-3, poly decay)")
    parser.add_argument("--loss", default="ce", help="loss name from segcourse.losses.get_loss: ce, ce_dice, dice, "
                        "focal, lovasz, tversky, ohem (default ce)")
    parser.add_argument("--monitor", default="val_miou", help="metric that picks the best epoch (default val_miou)")
    parser.add_argument("--model-kwargs", default="{}", help="JSON object of builder arguments, merged over the preset")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--amp", default="auto", choices=["auto", "on", "off", "bf16", "fp16"])
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from <out stem>.last.safetensors if present")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (e.g. in logs)")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"segcourse train: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from ..config import get_mode, mode_index, pick, set_mode

    if args.mode is not None:
        set_mode(args.mode)
    mode = get_mode()

    from torch.utils.data import DataLoader

    from ..config import get_device, seed_everything
    from ..constants import IGNORE_INDEX
    from ..data.catalog import get_info
    from . import distributed as ddp
    from .fit import fit
    from .registry import build_model, get_builder

    try:
        model_kwargs = json.loads(args.model_kwargs)
    except json.JSONDecodeError as err:
        raise ValueError(f"--model-kwargs must be a JSON object, e.g. '{{\"base_channels\": 32}}': {err}") from None
    if not isinstance(model_kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")  # noqa: TRY004 - a bad argument
    get_builder(args.model)  # fail early on an unknown model
    info = get_info(args.data.replace("-multiscale", ""))
    epochs = args.epochs if args.epochs is not None else (None if args.max_seconds else pick(smoke=1, quick=15, full=40))
    batch_size = args.batch_size or pick(smoke=4, quick=16, full=16)
    preset = PRESETS.get(args.model, ({}, {}, {}))[mode_index(mode)]
    kwargs = {**preset, **model_kwargs, "num_classes": info.num_classes}

    seed_everything(args.seed)
    device = get_device(args.device)
    train_set = _dataset(args.data, "train", args.train_count, args.size, augment=True)
    val_set = _dataset(args.data, "val", args.val_count, args.size, augment=False)
    pin = device.type == "cuda"
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=args.workers, pin_memory=pin,
                              drop_last=len(train_set) > batch_size)
    val_loader = DataLoader(val_set, batch_size=batch_size, num_workers=args.workers, pin_memory=pin)
    model = build_model(args.model, **kwargs)

    from ..losses import get_loss

    loss_fn = get_loss(args.loss, ignore_index=IGNORE_INDEX)
    height, width = train_set.images.shape[-2:]
    config = {"model": args.model, "model_kwargs": kwargs, "data": args.data, "classes": list(info.classes),
              "image_size": [int(height), int(width)], "preprocess": "float RGB in [0, 1] (uint8 / 255), (N, 3, H, W)",
              "loss": args.loss, "mode": mode, "seed": args.seed}
    print(f"segcourse train: {args.model} on {args.data} ({len(train_set)} train / {len(val_set)} val images, "
          f"{height}x{width}), mode={mode}, batch {batch_size}, loss {args.loss}")
    history = fit(model, train_loader, val_loader, loss_fn=loss_fn, num_classes=info.num_classes, epochs=epochs,
                  max_seconds=args.max_seconds, lr=args.lr, scheduler="poly" if epochs else None, device=device,
                  amp=args.amp, checkpoint=args.out, monitor=args.monitor, progress=not args.no_progress,
                  resume=args.resume, config=config)
    if ddp.setup().is_main:
        history_path = args.out.with_name(f"{args.out.stem}.history.json")
        history.save(history_path)
        best = history.best
        value = best.get(args.monitor, float("nan"))
        print(f"saved the best model (epoch {best['epoch']}, {args.monitor} {value:.4f}) to {args.out}; "
              f"history in {history_path}")
        print(f"load it with: segcourse.train.load_checkpoint({str(args.out)!r})")
    ddp.cleanup()
    return 0


def _dataset(name: str, split: str, count: int | None, size: int | None, augment: bool):
    """A synthetic split as an in-memory dataset of ``(float (3, H, W) in [0, 1], int64 (H, W))``."""
    from ..data import load_arrays

    arrays = load_arrays(name, split, count=count, size=size)
    return ArrayDataset(arrays["images"], arrays["masks"], augment=augment)


class ArrayDataset:
    """``(N, H, W, 3) uint8`` images + ``(N, H, W)`` masks as a map-style dataset of tensors.

    With ``augment=True`` each item is flipped horizontally and/or vertically at random
    (image and mask together, so they stay aligned); the random draws come from torch's
    generator, so a seeded run repeats.
    """

    def __init__(self, images, masks, augment: bool = False):
        import torch

        self.images = torch.as_tensor(images).permute(0, 3, 1, 2).float().div_(255)  # (N, 3, H, W) float
        self.masks = torch.as_tensor(masks).long()  # (N, H, W) int64
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        import torch

        image, mask = self.images[i], self.masks[i]
        if self.augment:
            if torch.rand(()) < 0.5:
                image, mask = image.flip(-1), mask.flip(-1)
            if torch.rand(()) < 0.5:
                image, mask = image.flip(-2), mask.flip(-2)
        return image, mask
