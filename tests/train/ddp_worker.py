"""Worker of ``test_distributed.py``: launched twice by ``torchrun`` (gloo, CPU).

Each rank seeds differently (so the initial weights differ until DDP broadcasts rank 0's),
trains a tiny model through the unchanged ``fit`` for two epochs and writes its final
weights, the sample indices it trained on and its history to ``OUT/rank<r>.*``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

torch.set_num_threads(1)

from segcourse import seed_everything  # noqa: E402
from segcourse.train import fit, save_checkpoint  # noqa: E402
from segcourse.train.distributed import cleanup, setup  # noqa: E402


class Logged(Dataset):
    """A tiny learnable dataset that remembers which indices this process read."""

    def __init__(self, n: int = 24, size: int = 8):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, size, size, generator=g)
        self.target = (self.images[:, 0] > 0.5).long()
        self.seen: list[int] = []

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        self.seen.append(int(i))
        return self.images[i], self.target[i]


def main(out: Path) -> None:
    info = setup(torch.device("cpu"))
    seed_everything(100 + info.rank)  # deliberately different initial weights per rank
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    train = Logged()
    val = Logged(n=10)
    history = fit(model, DataLoader(train, batch_size=4, shuffle=True), DataLoader(val, batch_size=4),
                  loss_fn=nn.CrossEntropyLoss(), epochs=2, lr=0.05, progress=False, verbose=info.rank == 0,
                  grad_accum_steps=2)  # 3 batches per rank: one synchronised pair, one last lone batch
    save_checkpoint(out / f"rank{info.rank}.safetensors", model)
    (out / f"rank{info.rank}.json").write_text(json.dumps({
        "world_size": info.world_size, "train_seen": train.seen, "val_seen": val.seen,
        "records": history.records}))
    cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
