"""Data-parallel training (DDP) that switches itself on under ``torchrun``.

``torchrun --nproc_per_node=N script.py`` starts N copies of a script and tells each its
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` through environment variables. :func:`fit`
reads them with :func:`setup`; when ``WORLD_SIZE`` is 1 (a plain ``python`` run or a
notebook) everything here is a no-op, so the same code runs both ways:

* the process group is initialised (``nccl`` on GPUs, ``gloo`` on CPUs);
* each process gets its own GPU (``cuda:LOCAL_RANK``);
* the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, which
  averages gradients across processes in ``backward()`` so every replica takes the same step;
* data loaders are rebuilt with a :class:`~torch.utils.data.DistributedSampler`, so each
  process sees a different 1/N of the data each epoch;
* validation confusion matrices and loss sums are added up across processes, so every
  rank computes the same scores; only rank 0 prints, logs and writes checkpoints.

References:
    Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel Training",
    VLDB 2020, https://arxiv.org/abs/2006.15704
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """``$WORLD_SIZE`` as set by torchrun (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: torch.device | None = None) -> DistInfo:
    """Join the process group torchrun prepared (idempotent); a no-op for a single process.

    Args:
        device: the device chosen for this run; when it is CUDA the process is pinned to
            ``cuda:LOCAL_RANK`` and the ``nccl`` backend is used, otherwise ``gloo``.

    Returns:
        The :class:`DistInfo` of this process.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", dist.get_rank())), dist.get_world_size())
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world} but this PyTorch build has no torch.distributed support")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device is not None and torch.device(device).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), local_rank, dist.get_world_size())


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    """Under DDP on GPUs each process uses ``cuda:LOCAL_RANK``; otherwise ``device`` unchanged."""
    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


def wrap_model(model: torch.nn.Module, device: torch.device, info: DistInfo) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` under DDP (rank 0's weights are broadcast to all); else ``model``."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else info.local_rank] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DDP / DataParallel / ``torch.compile`` wrapper."""
    while True:
        if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


class ShardSampler(torch.utils.data.Sampler):
    """Indices ``rank, rank + N, rank + 2N, ...``: an evaluation split with no padding.

    :class:`DistributedSampler` pads the dataset with repeated samples so every rank gets
    the same number; for validation that would count some images twice in the pooled
    confusion matrix, so evaluation loaders use this sampler instead.
    """

    def __init__(self, length: int, rank: int, world_size: int):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def distribute_loader(loader: DataLoader | None, info: DistInfo, *, shuffle: bool | None = None,
                      for_eval: bool = False) -> DataLoader | None:
    """Rebuild ``loader`` with a :class:`DistributedSampler` under DDP (unchanged otherwise).

    Args:
        loader: a map-style DataLoader (one with a ``batch_size``), or ``None``.
        info: this process's :class:`DistInfo`.
        shuffle: whether the sampler shuffles; default: whether ``loader`` shuffled
            (had a ``RandomSampler``).
        for_eval: split without padding (:class:`ShardSampler`), so that every image is
            counted exactly once when the ranks' confusion matrices are added up.

    Raises:
        ValueError: the loader uses a custom ``batch_sampler`` or an iterable dataset,
            which cannot be split automatically; build it with a ``DistributedSampler`` yourself.
    """
    if loader is None or not info.enabled or isinstance(loader.sampler, (DistributedSampler, ShardSampler)):
        return loader
    if loader.batch_size is None:
        raise ValueError("cannot split a DataLoader with a custom batch_sampler across processes; "
                         "build it with sampler=DistributedSampler(dataset) yourself")
    if shuffle is None:
        shuffle = isinstance(loader.sampler, RandomSampler)
    if for_eval:
        sampler = ShardSampler(len(loader.dataset), info.rank, info.world_size)
    else:
        sampler = DistributedSampler(loader.dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle,
                                     drop_last=False, seed=_shared_seed(info))
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      worker_init_fn=loader.worker_init_fn,
                      persistent_workers=loader.persistent_workers if loader.num_workers else False)


def _shared_seed(info: DistInfo) -> int:
    """Rank 0's torch seed, sent to every rank: the shuffle must be the same permutation everywhere,
    otherwise the ranks' shares overlap."""
    seed = torch.tensor([torch.initial_seed() % (2 ** 31)], dtype=torch.int64)
    if info.enabled:
        if dist.get_backend() == "nccl":
            seed = seed.cuda()
        dist.broadcast(seed, src=0)
    return int(seed.item())


def set_epoch(loader: DataLoader | None, epoch: int) -> None:
    """Tell a DistributedSampler the epoch, so its shuffle differs between epochs but not between ranks."""
    if loader is not None and isinstance(getattr(loader, "sampler", None), DistributedSampler):
        loader.sampler.set_epoch(epoch)


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over all processes (in place, returned); the identity for a single process."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_rank(flag: bool, device: torch.device, info: DistInfo) -> bool:
    """Whether ``flag`` is true on any process (all processes get the same answer); ``flag`` alone without DDP."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def average_gradients(model: torch.nn.Module, info: DistInfo) -> None:
    """Average every parameter's ``.grad`` over the processes, as DDP's ``backward`` does; for gradients
    accumulated under ``no_sync()`` that must be stepped without another synchronised backward."""
    if not info.enabled:
        return
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(info.world_size)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (call at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
