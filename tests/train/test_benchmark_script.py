"""The throughput benchmark script runs and prints its table (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "train_throughput.py"


def test_benchmark_prints_a_table(capsys):
    spec = importlib.util.spec_from_file_location("train_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        code = module.main(["--size", "32", "--batch", "2", "--steps", "1", "--warmup", "1", "--depth", "2",
                            "--width", "4", "--markdown", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert code == 0
    assert "| loader: in-memory arrays + flips | cpu |" in out
    assert "| train step: CPU fp32 | cpu |" in out
    if torch.cuda.is_available():
        assert "GPU AMP + channels_last" in out
    else:
        assert "GPU figures: not measured" in out
