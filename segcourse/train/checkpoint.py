"""Checkpoints that are safe to open: tensors in safetensors, everything else in JSON.

A ``torch.save``'d checkpoint is a pickle, and unpickling runs arbitrary code: opening a
checkpoint someone sent you is then as risky as running their script. The course's
checkpoints therefore hold **only tensors and JSON**:

* one ``.safetensors`` file (https://github.com/huggingface/safetensors) whose tensors are the
  model weights (``model.<name>``) and, for resumable training states, the optimizer's
  tensors (``optimizer.<param index>.<name>``) and the random-number-generator states;
* its header metadata holds one JSON document: the format version, the model's config (builder
  name and keyword arguments, so :func:`load_checkpoint` can rebuild it), the epoch and the
  monitored metric, and for training states the optimizer's hyper-parameters, the scheduler
  and GradScaler states and the history so far.

A ``.safetensors`` file is never unpickled: safetensors parses a JSON header and raw buffers.
Plain safetensors files (``save_file(model.state_dict())``) are accepted too, and so are plain
PyTorch state dicts (``.pt``/``.pth``/``.bin``): those *are* pickles, read with
``torch.load(weights_only=True)``, PyTorch's restricted unpickler, which builds only tensors,
plain containers and allowlisted globals (it had code-execution bypasses before torch 2.6,
CVE-2025-32434, and before 2.10, CVE-2026-24747: prefer safetensors). Their keys are the model's own,
taken as they are (a model with a submodule called ``model`` keeps its ``model.`` keys).
A truncated or corrupt file raises a ``ValueError`` that names it, and a failed write leaves no
temporary file behind.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ..files import atomic_path
from .distributed import unwrap_model

FORMAT = "segcourse-checkpoint"
VERSION = 1
_META_KEY = "segcourse"


class LoadedCheckpoint(NamedTuple):
    """What :func:`load_checkpoint` returns: ``model, config = load_checkpoint(path)``."""

    model: nn.Module
    config: dict


def last_path(checkpoint: str | os.PathLike) -> Path:
    """Where :func:`~segcourse.train.fit` keeps the resumable last state.

    ``best.safetensors`` -> ``best.last.safetensors``.
    """
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.last{path.suffix or '.safetensors'}")


# ---------------------------------------------------------------------------------------------
# low level: tensors + JSON in one file
# ---------------------------------------------------------------------------------------------


def write_file(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``tensors`` and the JSON document ``meta`` to ``path`` atomically (temp file + rename).

    Raises:
        TypeError: a value of ``tensors`` is not a tensor, or ``meta`` is not JSON-serialisable.
    """
    from safetensors.torch import save_file

    path = Path(path)
    clean = {}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor; "
                            "only tensors go into the safetensors part (put other values in the config)")
        clean[key] = value.detach().to("cpu").contiguous().clone()  # clone: safetensors refuses shared storage
    try:
        text = json.dumps({"format": FORMAT, "version": VERSION, **meta})
    except TypeError as err:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable: {err}") from None
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata={_META_KEY: text})
    return path


def read_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`write_file` (or a plain state dict).

    A ``.safetensors`` file is never unpickled; a ``.pt``/``.pth``/``.bin`` state dict goes through
    ``torch.load(weights_only=True)``, PyTorch's restricted unpickler (see the module docstring).

    Returns:
        ``(tensors, meta)``; ``meta`` is ``{}`` for a plain safetensors / ``.pt`` state dict.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, corrupt, or not a checkpoint (the message names it).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix in (".pt", ".pth", ".bin"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - pickle errors, truncated zip archives, forbidden globals
            raise ValueError(f"could not read checkpoint {path} with torch.load(weights_only=True): {err}") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"checkpoint {path} is not a plain state dict of tensors")
        return {f"model.{k}": v for k, v in state.items()}, {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 - safe_open is not a mapping
    except Exception as err:  # noqa: BLE001 - SafetensorError: header too large / incomplete / invalid
        raise ValueError(f"checkpoint {path} is truncated or corrupt (safetensors could not read it: {err}); "
                         "re-create it, e.g. by training again") from None
    if _META_KEY not in header:  # a plain safetensors state dict (e.g. from save_file(model.state_dict()))
        # Every key is the model's own, prefixed like ours. No guessing from the key names: a model with a
        # submodule called ``model`` has genuine keys "model.<...>" that must keep their prefix.
        return {f"model.{k}": v for k, v in tensors.items()}, {}
    try:
        meta = json.loads(header[_META_KEY])
    except json.JSONDecodeError as err:
        raise ValueError(f"checkpoint {path} has a corrupt metadata header: {err}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"checkpoint {path} has version {meta['version']}; this segcourse reads up to "
                         f"{VERSION}: update segcourse")
    return tensors, meta


# ---------------------------------------------------------------------------------------------
# model checkpoints
# ---------------------------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, config: dict | None = None) -> Path:
    """Save the model's weights and a JSON-serialisable ``config`` to ``path`` (``.safetensors``).

    Args:
        path: the file to write (its folder is created).
        model: the model (DDP / ``torch.compile`` wrappers are unwrapped).
        config: e.g. ``{"model": "unet", "model_kwargs": {"num_classes": 2}, "epoch": 7,
            "monitor": "val_miou", "value": 0.91}``; ``"model"`` + ``"model_kwargs"`` let
            :func:`load_checkpoint` rebuild the model by name.

    Returns:
        The path written.
    """
    state = unwrap_model(model).state_dict()
    return write_file(path, {f"model.{k}": v for k, v in state.items()}, {"kind": "model", "config": config or {}})


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None, *, device="cpu",
                    strict: bool = True) -> LoadedCheckpoint:
    """Load weights saved by :func:`save_checkpoint` (or :func:`~segcourse.train.fit`).

    Args:
        path: a ``.safetensors`` checkpoint (or a plain ``.pt`` state dict, read with ``weights_only=True``).
        model: the model to load into; ``None`` rebuilds it from the stored config with
            :func:`segcourse.train.registry.build_model` (``config["model"]``, ``config["model_kwargs"]``).
        device: where to put the model.
        strict: require the keys to match exactly.

    Returns:
        ``LoadedCheckpoint(model, config)``, the model in eval mode.

    Raises:
        FileNotFoundError / ValueError: missing, truncated or corrupt file; ``model=None`` but no
            model name in the config; weights that do not fit the model (the message lists keys).
    """
    tensors, meta = read_file(path)
    config = meta.get("config", {})
    if model is None:
        if "model" not in config:
            raise ValueError(f"checkpoint {path} does not name its model (config has no 'model' key); "
                             "pass the model to load into: load_checkpoint(path, model)")
        from .registry import build_model

        model = build_model(config["model"], **config.get("model_kwargs", {}))
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    _load_state(unwrap_model(model), state, strict, path)
    model.to(device).eval()
    return LoadedCheckpoint(model, config)


def _load_state(model: nn.Module, state: dict, strict: bool, path) -> None:
    own = model.state_dict()
    if strict:
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"checkpoint {path} does not fit this model: missing {missing[:5]}"
                             f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                             f"{'...' if len(unexpected) > 5 else ''} (built with other arguments?)")
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise ValueError(f"checkpoint {path}: {key} has shape {tuple(value.shape)}, the model expects "
                             f"{tuple(own[key].shape)} (built with other arguments, e.g. num_classes?)")
    model.load_state_dict(state, strict=strict)


# ---------------------------------------------------------------------------------------------
# resumable training state
# ---------------------------------------------------------------------------------------------


def save_training_state(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                        scheduler=None, scaler=None, epoch: int, history=None, best_value=None,
                        bad_epochs: int = 0, config: dict | None = None) -> Path:
    """Everything needed to continue training exactly: weights, optimizer, scheduler, GradScaler, RNGs, history.

    Args:
        scheduler: its ``state_dict()`` must be JSON-serialisable (true of the built-in schedulers;
            ``LambdaLR`` stores ``None`` for plain-function lambdas, which are rebuilt by the caller).
    """
    tensors = {f"model.{k}": v for k, v in unwrap_model(model).state_dict().items()}
    opt_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in opt_state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    rng = _rng_state()
    tensors.update(rng.pop("tensors"))
    meta = {
        "kind": "training-state", "config": config or {}, "epoch": epoch, "best_value": best_value,
        "bad_epochs": bad_epochs,
        "optimizer": {"param_groups": opt_state["param_groups"], "scalars": scalars},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "history": history.to_dict() if history is not None else None,
        "rng": rng,
    }
    try:
        json.dumps(meta["scheduler"])
    except TypeError:
        raise TypeError(f"the scheduler's state ({type(scheduler).__name__}) is not JSON-serialisable, so it cannot "
                        "go into a safe checkpoint; use a built-in scheduler or checkpoint=None") from None
    return write_file(path, tensors, meta)


def load_training_state(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                        scheduler=None, scaler=None, restore_rng: bool = True) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote into ``model``, ``optimizer`` (and scheduler, scaler, RNGs).

    Returns:
        The JSON part (``epoch``, ``history``, ``best_value``, ``bad_epochs``, ``config``...).

    Raises:
        ValueError: the file is not a training state (e.g. a best-model checkpoint), or is corrupt.
    """
    tensors, meta = read_file(path)
    if meta.get("kind") != "training-state":
        raise ValueError(f"{path} is a {meta.get('kind', 'plain')!r} checkpoint, not a resumable training state "
                         f"(those are the '*.last.safetensors' files fit writes beside the best model)")
    _load_state(unwrap_model(model), {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, True, path)
    device = next(iter(unwrap_model(model).parameters())).device
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    for index, entry in meta["optimizer"]["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    saved_groups = meta["optimizer"]["param_groups"]
    if len(saved_groups) != len(optimizer.param_groups):
        raise ValueError(f"{path}: the saved optimizer has {len(saved_groups)} parameter groups, this one "
                         f"{len(optimizer.param_groups)}")
    optimizer.load_state_dict({"state": state, "param_groups": saved_groups})
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    if restore_rng and meta.get("rng"):
        _set_rng_state(meta["rng"], tensors)
    return meta


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy": torch.from_numpy(np_state[1].astype(np.int64))}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return {"tensors": tensors, "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}


def _set_rng_state(rng: dict, tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    name, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda_keys = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    cuda_states = [tensors[k] for k in cuda_keys]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
