"""History bookkeeping and the mixed-precision / channels-last decisions (no GPU needed)."""

from __future__ import annotations

import math

import pytest
import torch

from segcourse.train import History, resolve_precision
from segcourse.train.history import is_better, monitor_mode, plot_history


def _records():
    return [{"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "val_miou": 0.50},
            {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "val_miou": 0.70},
            {"epoch": 3, "train_loss": 0.4, "val_loss": 0.7, "val_miou": 0.70}]


@pytest.mark.parametrize("monitor, mode, best_epoch", [
    ("val_miou", "max", 2),   # 0.70 first reached at epoch 2; the tie at epoch 3 does not replace it
    ("val_loss", "min", 2),   # 0.6 is the lowest validation loss
    ("train_loss", "min", 3),
])
def test_best_record_by_monitor(monitor, mode, best_epoch):
    history = History(_records(), monitor=monitor)
    assert history.mode == mode == monitor_mode(monitor)
    assert history.best["epoch"] == best_epoch


def test_history_columns_table_and_json_round_trip(tmp_path):
    history = History(_records(), monitor="val_miou")
    history.stop_reason = "early_stopping"
    assert history["val_miou"] == [0.5, 0.7, 0.7]
    assert history[-1]["epoch"] == 3 and len(history) == 3
    with pytest.raises(KeyError, match="recorded keys: epoch, train_loss"):
        history["val_dice"]
    lines = history.table(["epoch", "val_miou"]).splitlines()
    assert lines[0].split() == ["epoch", "val_miou"] and lines[2].split() == ["2", "0.7000"]
    loaded = History.load(history.save(tmp_path / "h.json"))
    assert loaded.records == history.records and loaded.stop_reason == "early_stopping"
    assert repr(loaded) == "History(3 epochs, best val_miou=0.7000 at epoch 2)"


def test_plot_history_takes_records_or_a_dict_of_lists():
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_miou": 0.3, "val_fwiou": 0.2},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "val_miou": 0.6, "val_fwiou": 0.5}]
    fig = plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "validation"]
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["val_miou"]   # the default curves only
    columns = {k: [r[k] for r in history] for k in history[0]}
    assert [line.get_label() for line in plot_history(columns).axes[1].get_lines()] == ["val_miou"]
    other = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_ap": 0.3}]
    assert [line.get_label() for line in plot_history(other).axes[1].get_lines()] == ["val_ap"]  # none of the defaults
    with pytest.raises(ValueError, match="empty"):
        plot_history([])


def test_nan_never_counts_as_an_improvement():
    assert not is_better(math.nan, None, "max")
    assert is_better(0.5, None, "max") and is_better(0.4, 0.5, "min") and not is_better(0.5, 0.5, "max")


@pytest.mark.parametrize("amp, bf16_supported, dtype, scaler", [
    ("auto", True, torch.bfloat16, False),   # Ampere and newer: bf16, no loss scaling
    ("auto", False, torch.float16, True),    # older GPUs: fp16 needs a GradScaler
    ("fp16", True, torch.float16, True),
    ("off", True, None, False),
    (False, True, None, False),
])
def test_cuda_precision_choices(monkeypatch, amp, bf16_supported, dtype, scaler):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    p = resolve_precision(amp, "auto", "cuda")
    assert p.dtype == dtype and p.use_scaler == scaler and p.channels_last


def test_cpu_precision_choices():
    assert resolve_precision("auto", "auto", "cpu").dtype is None          # amp="auto" -> off on CPU
    assert not resolve_precision("auto", "auto", "cpu").channels_last
    on = resolve_precision(True, True, "cpu")
    assert on.dtype == torch.bfloat16 and not on.use_scaler and on.channels_last
    assert resolve_precision("auto", "auto", "cpu").describe() == "amp=off channels_last=off"
    with pytest.raises(ValueError, match="bf16"):
        resolve_precision("fp16", "auto", "cpu")
    with pytest.raises(ValueError, match="amp must be"):
        resolve_precision("half", "auto", "cpu")
    with pytest.raises(ValueError, match="channels_last"):
        resolve_precision("auto", "yes", "cpu")
