"""DDP: ``fit`` launched unchanged by torchrun on 2 CPU processes (gloo) ends with identical replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segcourse.train.checkpoint import read_file
from segcourse.train.distributed import ShardSampler

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    # the pinned torch wheels (Linux, macOS, Windows) all ship torch.distributed with gloo: fail, never skip
    assert torch.distributed.is_available(), "this PyTorch build has no torch.distributed (reinstall the pinned torch)"
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out, proc


def test_both_ranks_end_with_identical_weights(ddp_run):
    out, _ = ddp_run
    w0, _ = read_file(out / "rank0.safetensors")
    w1, _ = read_file(out / "rank1.safetensors")
    assert w0.keys() == w1.keys()
    for key in w0:
        assert torch.equal(w0[key], w1[key]), key


def test_each_rank_trains_on_its_own_half_of_the_data(ddp_run):
    out, _ = ddp_run
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    # 24 images, 2 epochs, 2 ranks: 12 per rank per epoch, disjoint within an epoch
    for epoch in range(2):
        a = set(r0["train_seen"][12 * epoch:12 * (epoch + 1)])
        b = set(r1["train_seen"][12 * epoch:12 * (epoch + 1)])
        assert len(a) == len(b) == 12 and not a & b and a | b == set(range(24))
    # validation: 10 images split without padding (each counted once), every epoch
    assert sorted(r0["val_seen"][:5] + r1["val_seen"][:5]) == list(range(10))


def test_ranks_agree_on_the_pooled_validation_scores(ddp_run):
    out, proc = ddp_run
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    for a, b in zip(r0["records"], r1["records"]):
        assert a["val_miou"] == b["val_miou"] and a["train_loss"] == b["train_loss"]
    assert "x 2 processes" in proc.stdout  # only rank 0 prints, and it says DDP is on
    assert proc.stdout.count("training on") == 1


def test_shard_sampler_covers_every_index_once():
    shards = [list(ShardSampler(10, rank, 3)) for rank in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
