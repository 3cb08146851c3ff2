"""How fast this machine trains: images per second of the engine's U-Net training step.

The course runner measures it before running the lessons (a few seconds), prints it beside
each lesson's time and stores it in each solution's stamp, so that lesson times measured on
different machines can be compared (the same quick-mode course took 319 s on one 2-core
machine and 662 s on another) and the runner can say how long the course should take here.
``benchmarks/train_throughput.py`` uses :func:`train_rate` for its training rows. Course machinery: no
lesson imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

#: The reference workload: the quick-mode U-Net of lesson 04 on 96 x 96 images, batch 8.
REFERENCE = {"size": 96, "batch": 8, "depth": 4, "width": 16}


def train_rate(model_fn: Callable[[], nn.Module], batches: Sequence, device, amp: str = "off",
               channels_last: bool = False, warmup: int = 1) -> float:
    """Images per second of the engine's training step (``train_one_epoch``) on ``device``.

    Args:
        model_fn: builds a fresh model.
        batches: ``(images (N, C, H, W) float, target (N, H, W) int64)`` pairs; the first ``warmup``
            are run untimed (kernels, allocator, autotuning), all of them are timed after that.
        device: where to train.
        amp, channels_last: as in :func:`segcourse.train.fit`.
    """
    from segcourse.losses import get_loss
    from segcourse.train.amp import make_scaler, resolve_precision
    from segcourse.train.epoch import train_one_epoch
    from segcourse.train.tasks import SegmentationTask

    device = torch.device(device)
    precision = resolve_precision(amp, channels_last, device)
    model = model_fn().to(device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    task = SegmentationTask(get_loss("ce"), 2)
    common = dict(task=task, device=device, precision=precision, scaler=make_scaler(precision, device), progress=False)
    batches = list(batches)
    if warmup:
        train_one_epoch(model, batches[:warmup], optimizer, **common)
    if device.type == "cuda":
        torch.cuda.synchronize()
    stats = train_one_epoch(model, batches, optimizer, **common)  # .item() at the end synchronises
    return float(stats["images_per_s"])


def machine_speed(seconds: float = 4.0, *, steps: int | None = None, rounds: int = 3) -> float:
    """Images per second of the reference U-Net training step on the CPU (fp32), measured for about ``seconds``.

    One warm-up step, then one timed step to size the run, then ``rounds`` timed rounds of as many
    steps as fit in ``seconds / rounds`` (at least 2 each); the fastest round is the machine's speed.
    Another process that grabs the cores for a moment slows one round, not all of them, so the best
    round is a steadier measure of the machine than one long run (a store made while other jobs
    shared the two cores once recorded 1.9 images/s on a machine that does 34 when quiet). The data
    are random tensors: only the arithmetic matters here.

    Args:
        seconds: the time budget of the timed rounds.
        steps: steps per round instead of sizing them from ``seconds`` (tests use 1).
        rounds: how many timed rounds; the best one counts.

    Returns:
        images per second (higher is faster; about 70 on a quiet fast 2-core machine, 32 on a slow one).
    """
    from segcourse.models import unet

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    g = torch.Generator().manual_seed(0)
    r = REFERENCE

    def batch():
        return (torch.rand(r["batch"], 3, r["size"], r["size"], generator=g),
                torch.randint(0, 2, (r["batch"], r["size"], r["size"]), generator=g))

    def model_fn():
        torch.manual_seed(0)
        return unet(num_classes=2, depth=r["depth"], base_channels=r["width"])

    if steps is None:
        start = time.perf_counter()
        first = train_rate(model_fn, [batch(), batch()], "cpu", warmup=1)
        spent = time.perf_counter() - start
        if spent >= seconds:  # a slow or busy machine: one timed step is all the budget allows
            return first
        steps = max(2, int((seconds - spent) / rounds * first / r["batch"]))
    return max(train_rate(model_fn, [batch() for _ in range(steps + 1)], "cpu", warmup=1) for _ in range(rounds))


def load_average() -> float | None:
    """The machine's 1-minute load average per logical CPU (None where the OS does not tell).

    Above about 1, other work competed for the cores while something was timed; the course runner
    prints it beside the machine's speed and the solutions' stamps keep it.
    """
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 2)
    except (AttributeError, OSError):
        return None


def machine_name() -> str:
    """``"<CPU model>, <n> logical CPUs"`` (and the GPU, if any): how stamps and benchmarks name a machine."""
    import platform
    from pathlib import Path

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} logical CPUs"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text
