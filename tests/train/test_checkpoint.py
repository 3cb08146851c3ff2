"""Checkpoints: safetensors + JSON, best-model saving, exact resume, clear errors on bad files."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segcourse import seed_everything
from segcourse.train import evaluate, fit, load_checkpoint, register_model, save_checkpoint
from segcourse.train.checkpoint import last_path, load_training_state, read_file, save_training_state

from ._train_helpers import tiny_data, tiny_net


def test_save_and_load_round_trip_with_config(tmp_path):
    model = tiny_net(3)
    path = save_checkpoint(tmp_path / "sub" / "m.safetensors", model, config={"model": "tiny", "epoch": 4})
    fresh = tiny_net(3)
    loaded, config = load_checkpoint(path, fresh)
    assert loaded is fresh and not loaded.training
    assert config == {"model": "tiny", "epoch": 4}
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key])


def test_the_file_is_plain_safetensors_with_a_json_header(tmp_path):
    from safetensors import safe_open

    path = save_checkpoint(tmp_path / "m.safetensors", tiny_net(), config={"model": "tiny"})
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        meta = json.loads(f.metadata()["segcourse"])
    assert keys == {f"model.{k}" for k in tiny_net().state_dict()}
    assert meta["format"] == "segcourse-checkpoint" and meta["config"] == {"model": "tiny"}


def test_load_rebuilds_the_model_by_registered_name(tmp_path):
    register_model("tiny-test-net", lambda num_classes=2, width=8: tiny_net(num_classes, width))
    model = tiny_net(4, width=5)
    path = save_checkpoint(tmp_path / "m.safetensors", model,
                           config={"model": "tiny-test-net", "model_kwargs": {"num_classes": 4, "width": 5}})
    loaded, _ = load_checkpoint(path)
    images, _ = tiny_data(n=2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images))


def test_load_into_a_model_of_another_shape_names_the_key(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_net(3))
    with pytest.raises(ValueError, match=r"2\.(weight|bias) has shape.*num_classes"):
        load_checkpoint(path, tiny_net(2))
    with pytest.raises(ValueError, match="does not name its model"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_corrupt_checkpoint_gives_a_clear_error_naming_the_file(tmp_path, damage):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_net())
    data = path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "garbage": b"\x00not a checkpoint" * 10, "empty": b""}
    path.write_bytes(damaged[damage])
    with pytest.raises(ValueError, match=r"m\.safetensors.*(truncated or corrupt)"):
        load_checkpoint(path, tiny_net())


def test_missing_checkpoint_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_checkpoint(tmp_path / "nope.safetensors", tiny_net())


class _Evil:
    def __reduce__(self):  # would run code when unpickled
        return (exec, ("import sys; sys.modules['__evil__'] = True",))


def test_pickled_objects_are_never_unpickled(tmp_path):
    import sys

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"weight": _Evil()}, protocol=2))
    with pytest.raises(ValueError, match="evil.pt.*weights_only"):
        load_checkpoint(path, tiny_net())
    assert "__evil__" not in sys.modules


def test_plain_pt_state_dict_is_read_with_weights_only(tmp_path):
    model = tiny_net()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    fresh, config = load_checkpoint(tmp_path / "w.pt", tiny_net())
    assert config == {}
    assert torch.equal(fresh.state_dict()["0.weight"], model.state_dict()["0.weight"])


class _Wrapper(nn.Module):
    """A model whose submodule is called ``model``: its genuine state-dict keys start with "model."."""

    def __init__(self):
        super().__init__()
        self.model = tiny_net()
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return self.model(x) * self.scale


@pytest.mark.parametrize("kind", ["safetensors", "pt"])
def test_a_plain_state_dict_keeps_a_genuine_top_level_model_prefix(tmp_path, kind):
    from safetensors.torch import save_file

    seed_everything(3)
    model = _Wrapper()
    state = model.state_dict()
    assert any(k.startswith("model.") for k in state) and "scale" in state
    path = tmp_path / f"w.{kind}"
    if kind == "pt":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    tensors, meta = read_file(path)
    assert meta == {} and set(tensors) == {f"model.{k}" for k in state}     # "model.model.0.weight", "model.scale"
    fresh, _ = load_checkpoint(path, _Wrapper())
    for key, value in state.items():
        assert torch.equal(fresh.state_dict()[key], value), key
    # and our own format round-trips the same model
    save_checkpoint(tmp_path / "ours.safetensors", model)
    again, _ = load_checkpoint(tmp_path / "ours.safetensors", _Wrapper())
    assert torch.equal(again.state_dict()["model.0.weight"], state["model.0.weight"])


def test_a_failed_write_leaves_no_temporary_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    import safetensors.torch

    path = tmp_path / "ckpt" / "best.safetensors"
    model = tiny_net()
    save_checkpoint(path, model, config={"epoch": 1})
    before = path.read_bytes()

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model, config={"epoch": 2})
    assert [p.name for p in path.parent.iterdir()] == ["best.safetensors"]   # no .tmp left behind
    assert path.read_bytes() == before
    monkeypatch.setattr(safetensors.torch, "save_file", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model)
    assert [p.name for p in path.parent.iterdir()] == ["best.safetensors"]


def test_fit_saves_the_best_epoch(tmp_path, loaders, ce):
    train, val = loaders
    seed_everything(0)
    model = tiny_net()
    ckpt = tmp_path / "best.safetensors"
    history = fit(model, train, val, loss_fn=ce, epochs=4, lr=2e-2, checkpoint=ckpt, progress=False, verbose=False,
                  config={"model": "tiny", "model_kwargs": {}})
    best = history.best
    loaded, config = load_checkpoint(ckpt, tiny_net())
    assert config["epoch"] == best["epoch"] and config["value"] == pytest.approx(best["val_miou"])
    assert config["model"] == "tiny" and config["monitor"] == "val_miou"
    assert evaluate(loaded, val, 2)["miou"] == pytest.approx(best["val_miou"])
    assert last_path(ckpt).exists() and last_path(ckpt).name == "best.last.safetensors"


class _CrashesInEpoch:
    """A loader whose ``crash_in``-th pass stops the run (as a killed process would), before any batch."""

    def __init__(self, loader, crash_in: int):
        self.loader, self.crash_in, self.passes = loader, crash_in, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.passes += 1
        if self.passes == self.crash_in:
            raise KeyboardInterrupt
        return iter(self.loader)


def _run(tmp_path, epochs, resume=False, ckpt_name="c.safetensors", crash_in=None):
    images, target = tiny_data()
    loader = DataLoader(TensorDataset(images, target), batch_size=4, shuffle=True)
    val = DataLoader(TensorDataset(images[:8], target[:8]), batch_size=8)
    if not resume:
        seed_everything(1)
    model = tiny_net()
    history = fit(model, loader if crash_in is None else _CrashesInEpoch(loader, crash_in), val,
                  loss_fn=nn.CrossEntropyLoss(), epochs=epochs, optimizer="adamw", scheduler="poly",
                  checkpoint=tmp_path / ckpt_name, resume=resume, progress=False, verbose=False)
    return model, history


def test_resume_continues_exactly_where_training_stopped(tmp_path):
    straight, h_straight = _run(tmp_path / "a", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", epochs=3, crash_in=3)  # killed at the start of epoch 3
    seed_everything(123)  # a different global state: the resume must restore the saved RNG
    resumed, h_resumed = _run(tmp_path / "b", epochs=3, resume=True)
    assert [r["epoch"] for r in h_resumed.records] == [1, 2, 3]
    assert h_resumed["train_loss"] == pytest.approx(h_straight["train_loss"], rel=1e-6)
    assert h_resumed["lr"] == pytest.approx(h_straight["lr"])  # the poly schedule's state carried over
    assert h_straight["lr"][0] == pytest.approx(1e-3) and h_straight["lr"][2] < h_straight["lr"][1] < 1e-3
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=1e-6, atol=1e-7)


def test_resume_true_without_a_last_state_starts_fresh(tmp_path):
    _, history = _run(tmp_path, epochs=1, resume=True)
    assert len(history) == 1


def test_resume_from_a_best_model_file_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", tiny_net())
    with pytest.raises(ValueError, match="not a resumable training state"):
        load_training_state(path, tiny_net(), torch.optim.SGD(tiny_net().parameters(), lr=0.1))


def test_training_state_keeps_optimizer_tensors_and_scalars(tmp_path):
    model = tiny_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(1, 3, 4, 4)).sum().backward()
    opt.step()
    path = save_training_state(tmp_path / "s.safetensors", model, opt, epoch=1)
    tensors, meta = read_file(path)
    assert any(k.startswith("optimizer.0.momentum_buffer") for k in tensors)
    assert meta["optimizer"]["param_groups"][0]["momentum"] == 0.9
    model2 = tiny_net()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.5, momentum=0.5)
    load_training_state(path, model2, opt2)
    assert opt2.param_groups[0]["lr"] == 0.1
    torch.testing.assert_close(opt2.state_dict()["state"][0]["momentum_buffer"],
                               opt.state_dict()["state"][0]["momentum_buffer"])


def test_resuming_a_finished_run_trains_nothing_more(tmp_path):
    _run(tmp_path, epochs=2)
    _, history = _run(tmp_path, epochs=2, resume=True)
    assert [r["epoch"] for r in history.records] == [1, 2]
