"""fit / evaluate / predict on tiny CPU problems: history, pooled metrics, determinism, options."""

from __future__ import annotations

import math

import pytest
import torch
import torchmetrics  # a pinned test dependency: a broken install must fail, not skip
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segcourse import IGNORE_INDEX, seed_everything
from segcourse.train import History, build_scheduler, evaluate, fit, plot_history, predict

from ._train_helpers import FixedPrediction, tiny_data, tiny_net


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# fit: the history
# ---------------------------------------------------------------------------------------------


def test_fit_learns_and_records_every_epoch(loaders, ce):
    train, val = loaders
    seed_everything(0)
    model = tiny_net()
    history = fit(model, train, val, loss_fn=ce, epochs=4, lr=2e-2, progress=False, verbose=False)
    assert isinstance(history, History) and len(history) == 4
    assert [r["epoch"] for r in history.records] == [1, 2, 3, 4]
    for key in ("train_loss", "val_loss", "val_miou", "val_pixel_accuracy", "val_dice", "val_fg_dice",
                "val_iou_per_class", "seconds", "images_per_s", "lr"):
        assert key in history.records[0], key
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_miou"][-1] > history["val_miou"][0]
    # the best record is the one with the highest monitored value
    assert history.best["val_miou"] == max(history["val_miou"])
    assert history.stop_reason == "epochs"
    assert all(r["lr"] == pytest.approx(2e-2) for r in history.records)
    # 32 training images per epoch
    assert all(r["images_per_s"] > 0 for r in history.records)


def test_fit_without_validation_monitors_nothing_but_still_records(loaders, ce):
    train, _ = loaders
    history = fit(tiny_net(), train, loss_fn=ce, epochs=2, progress=False, verbose=False)
    assert "val_miou" not in history.records[0]
    assert history.best is history.records[-1]  # falls back to the last epoch


def test_fit_monitor_loss_is_minimised(loaders, ce):
    train, val = loaders
    history = fit(tiny_net(), train, val, loss_fn=ce, epochs=3, lr=2e-2, monitor="val_loss", progress=False,
                  verbose=False)
    assert history.mode == "min"
    assert history.best["val_loss"] == min(history["val_loss"])


def test_fit_prints_device_and_throughput(loaders, ce, capsys):
    train, val = loaders
    fit(tiny_net(), train, val, loss_fn=ce, epochs=1, progress=False)
    out = capsys.readouterr().out
    assert "training on cpu" in out and "amp=off" in out
    assert "img/s" in out and "done (epochs)" in out


def test_plot_history_draws_the_default_curves(loaders, ce):
    train, val = loaders
    history = fit(tiny_net(), train, val, loss_fn=ce, epochs=2, progress=False, verbose=False)
    fig = plot_history(history)
    labels = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert {"train_loss", "val_loss", "val_miou", "val_dice", "val_fg_dice"} <= set(labels)
    assert "val_fwiou" not in labels  # not drawn by default, see history.table()
    assert "val_miou" in history.table()


# ---------------------------------------------------------------------------------------------
# evaluate: one confusion matrix pooled over the data set
# ---------------------------------------------------------------------------------------------


def _two_batch_case():
    """Batch A: 1 image, 4 pixels; batch B: 1 image, 4 pixels; 2 classes.

    A: target [1, 0, 0, 0], pred [1, 1, 0, 0] -> class-1 IoU = 1/(1+1) = 1/2, class-0 IoU = 2/(2+1) = 2/3
    B: target [1, 1, 1, 1], pred [1, 1, 1, 0] -> class-1 IoU = 3/4, class-0 IoU = 0/1 = 0
    Pooled: class 1: TP = 4, FP = 1, FN = 1 -> IoU 4/6; class 0: TP = 2, FP = 1, FN = 1 -> IoU 2/4.
    Pooled mIoU = (2/3 + 1/2) / 2 = 7/12. (Averaging the two batches' mIoUs would give
    ((2/3 + 1/2) / 2 + (0 + 3/4) / 2) / 2 = (7/12 + 3/8) / 2 = 23/48 instead: the per-batch bug.)
    """
    target = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [1, 1]]])
    pred = torch.tensor([[[1, 1], [0, 0]], [[1, 1], [1, 0]]])
    images = torch.zeros(2, 3, 2, 2)
    images[1, 0] = 1.0  # image index read by FixedPrediction
    return images, target, pred


def test_evaluate_pools_the_confusion_matrix_over_batches():
    images, target, pred = _two_batch_case()
    loader = DataLoader(TensorDataset(images, target), batch_size=1)
    scores = evaluate(FixedPrediction(pred, 2), loader, num_classes=2)
    assert scores["miou"] == pytest.approx(7 / 12)
    assert scores["iou_per_class"] == pytest.approx([1 / 2, 2 / 3])
    assert scores["pixel_accuracy"] == pytest.approx(6 / 8)
    assert scores["fg_dice"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 1))  # 2TP / (2TP + FP + FN) = 0.8
    assert scores["confusion"] == [[2, 1], [1, 4]]
    assert scores["images"] == 2
    # the per-batch bug of the docstring, measured: each batch alone, then the mean of the two mIoUs
    alone = [evaluate(FixedPrediction(pred, 2), DataLoader(TensorDataset(images[i:i + 1], target[i:i + 1])),
                      num_classes=2)["miou"] for i in range(2)]
    assert alone == pytest.approx([7 / 12, 3 / 8])
    assert sum(alone) / 2 == pytest.approx(23 / 48) and 23 / 48 != pytest.approx(7 / 12)


def test_evaluate_matches_torchmetrics_and_ignores_ignore_index():
    g = torch.Generator().manual_seed(1)
    n, c = 6, 4
    target = torch.randint(0, c, (n, 8, 8), generator=g)
    target[:, :2] = IGNORE_INDEX
    pred = torch.randint(0, c, (n, 8, 8), generator=g)
    images = torch.zeros(n, 3, 8, 8)
    images[:, 0] = torch.arange(n, dtype=torch.float32)[:, None, None]
    loader = DataLoader(TensorDataset(images, target), batch_size=4)
    scores = evaluate(FixedPrediction(pred, c), loader, num_classes=c, ignore_index=IGNORE_INDEX)
    ref = torchmetrics.classification.MulticlassJaccardIndex(num_classes=c, average="macro", ignore_index=IGNORE_INDEX)
    assert scores["miou"] == pytest.approx(float(ref(pred, target)), abs=1e-6)
    acc = torchmetrics.classification.MulticlassAccuracy(num_classes=c, average="micro", ignore_index=IGNORE_INDEX)
    assert scores["pixel_accuracy"] == pytest.approx(float(acc(pred, target)), abs=1e-6)


def test_evaluate_reports_the_loss_and_restores_train_mode(loaders, ce):
    _, val = loaders
    model = tiny_net().train()
    scores = evaluate(model, val, 2, loss_fn=ce)
    images, target = next(iter(val))
    with torch.no_grad():
        first = ce(model(images), target).item()
    assert math.isfinite(scores["loss"]) and scores["loss"] > 0
    assert model.training
    # two equal batches of 8: the mean loss per image is the mean of the two batch losses
    with torch.no_grad():
        both = [ce(model(x), y).item() for x, y in val]
    assert scores["loss"] == pytest.approx(sum(both) / 2, rel=1e-6)
    assert both[0] == pytest.approx(first)


def test_evaluate_binary_one_channel_model_counts_two_classes():
    # one logit per pixel: positive -> foreground
    logits_model = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        logits_model.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
    images = torch.zeros(1, 3, 1, 4)
    images[0, 0] = torch.tensor([-1.0, 2.0, 3.0, -4.0])  # pred [0, 1, 1, 0]
    target = torch.tensor([[[0, 1, 0, 0]]])
    scores = evaluate(logits_model, DataLoader(TensorDataset(images, target), batch_size=1))
    # class 1: TP 1, FP 1, FN 0 -> IoU 1/2; class 0: TP 2, FP 0, FN 1 -> IoU 2/3
    assert scores["iou_per_class"] == pytest.approx([2 / 3, 1 / 2])


def test_evaluate_rejects_malformed_targets():
    images = torch.zeros(2, 3, 4, 4)
    with pytest.raises(TypeError, match="int64"):
        evaluate(tiny_net(), DataLoader(TensorDataset(images, torch.zeros(2, 4, 4)), batch_size=2), 2)
    with pytest.raises(ValueError, match="squeeze"):
        channel_target = torch.zeros(2, 1, 4, 4, dtype=torch.long)
        evaluate(tiny_net(), DataLoader(TensorDataset(images, channel_target), batch_size=2), 2)
    with pytest.raises(TypeError, match="float"):
        evaluate(tiny_net(), DataLoader(TensorDataset(images.byte(), torch.zeros(2, 4, 4, dtype=torch.long)),
                                        batch_size=2), 2)


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------


def test_predict_shapes_and_equals_argmax():
    model = tiny_net(3)
    images, _ = tiny_data(n=5, num_classes=3)
    pred = predict(model, images, batch_size=2)
    assert pred.shape == (5, 16, 16) and pred.dtype == torch.int64
    with torch.no_grad():
        assert torch.equal(pred, model(images).argmax(1))
    assert predict(model, images[0]).shape == (16, 16)


def test_predict_rejects_wrong_inputs():
    with pytest.raises(TypeError, match="float"):
        predict(tiny_net(), torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        predict(tiny_net(), [[0.0]])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        predict(tiny_net(), torch.zeros(4, 4))


# ---------------------------------------------------------------------------------------------
# determinism, gradient accumulation, clipping, schedules
# ---------------------------------------------------------------------------------------------


def _seeded_run(seed, **kwargs):
    seed_everything(seed)
    images, target = tiny_data()
    model = tiny_net()
    loader = DataLoader(TensorDataset(images, target), batch_size=4, shuffle=True)
    history = fit(model, loader, loss_fn=nn.CrossEntropyLoss(), epochs=2, progress=False, verbose=False, **kwargs)
    return model, history


def test_same_seed_gives_identical_weights_on_cpu():
    a, ha = _seeded_run(3)
    b, hb = _seeded_run(3)
    c, _ = _seeded_run(4)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert ha["train_loss"] == hb["train_loss"]
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


class _CountingLoader:
    """A loader that counts how often it is iterated (each iter() of a DataLoader starts its workers)."""

    def __init__(self, loader):
        self.loader, self.iterations = loader, 0

    def __iter__(self):
        self.iterations += 1
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)


@pytest.mark.parametrize("progress", [False, True])
def test_fit_iterates_each_loader_once_per_epoch(loaders, ce, progress):
    # tqdm.auto(loader) would call iter() twice per pass (its asyncio mix-in iterates in the constructor)
    train, val = (_CountingLoader(loader) for loader in loaders)
    fit(tiny_net(), train, val, loss_fn=ce, epochs=2, progress=progress, verbose=False)
    assert (train.iterations, val.iterations) == (2, 2)


def _lesson04_hand_written_epoch(model, train_loader, optimizer, loss_fn, device):
    """Lesson 04's hand-written epoch (solutions/04_unet.ipynb, "One epoch by hand"), kept in step with it."""
    gpu = device.type == "cuda"                                  # off on a CPU: enabled=False makes each a no-op
    layout = torch.channels_last if gpu else torch.contiguous_format
    model.to(device, memory_format=layout).train()
    scaler = torch.amp.GradScaler(device.type, enabled=gpu)      # float16 gradients need loss scaling
    total, seen = 0.0, 0
    for images, target in train_loader:
        images = images.to(device, non_blocking=True, memory_format=layout)
        target = target.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=gpu):
            loss = loss_fn(model(images), target)                # forward and loss in float16 on a GPU
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()                            # backward outside autocast, on the scaled loss
        scaler.step(optimizer)                                   # unscales; skips the step on inf/NaN gradients
        scaler.update()                                          # adapts the scale for the next step
        total, seen = total + loss.item() * len(images), seen + len(images)
    return total / seen


def test_lesson04_hand_written_epoch_equals_train_one_epoch_on_cpu():
    # the lesson's ten-line loop with autocast, GradScaler and channels_last (all off on a CPU) does exactly
    # what the engine's train_one_epoch does: the same weights and the same mean loss after one epoch
    from segcourse.train import train_one_epoch
    from segcourse.train.amp import make_scaler, resolve_precision
    from segcourse.train.tasks import SegmentationTask

    images, target = tiny_data(n=24)
    device = torch.device("cpu")
    results = []
    for by_hand in (True, False):
        torch.manual_seed(0)
        model = tiny_net()
        loader = DataLoader(TensorDataset(images, target), batch_size=8, shuffle=True,
                            generator=torch.Generator().manual_seed(1))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
        ce = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        if by_hand:
            loss = _lesson04_hand_written_epoch(model, loader, optimizer, ce, device)
        else:
            precision = resolve_precision("auto", "auto", device)
            loss = train_one_epoch(model, loader, optimizer, task=SegmentationTask(ce), device=device,
                                   precision=precision, scaler=make_scaler(precision, device), progress=False)["loss"]
        results.append((loss, _weights(model)))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    for key, value in results[0][1].items():
        torch.testing.assert_close(value, results[1][1][key], rtol=1e-6, atol=1e-7)


def test_lesson04_notebook_still_has_the_tested_loop():
    import inspect
    import json
    from pathlib import Path

    notebook = Path(__file__).resolve().parents[2] / "solutions" / "04_unet.ipynb"
    cells = ["".join(c["source"]) for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]]
    loop = next((c for c in cells if "scaler.scale(loss).backward()" in c), None)
    assert loop is not None, "lesson 04 lost its hand-written epoch"
    body = inspect.getsource(_lesson04_hand_written_epoch)
    for line in ("with torch.autocast(device.type, dtype=torch.float16, enabled=gpu):",
                 "loss = loss_fn(model(images), target)", "optimizer.zero_grad(set_to_none=True)",
                 "scaler.scale(loss).backward()", "scaler.step(optimizer)", "scaler.update()",
                 "scaler = torch.amp.GradScaler(device.type, enabled=gpu)",
                 "images = images.to(device, non_blocking=True, memory_format=layout)"):
        assert line in loop and line in body, line


def _sgd_epochs(model, loader, lr, epochs=1, amp="off", channels_last=False, **options):
    """``epochs`` passes of :func:`train_one_epoch` with plain SGD (no momentum): each step is -lr x gradient."""
    from segcourse.train import train_one_epoch
    from segcourse.train.amp import make_scaler, resolve_precision
    from segcourse.train.tasks import SegmentationTask

    device = torch.device("cpu")
    precision = resolve_precision(amp, channels_last, device)
    model.to(memory_format=torch.channels_last if precision.channels_last else torch.contiguous_format)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    task = SegmentationTask(nn.CrossEntropyLoss())
    return [train_one_epoch(model, loader, opt, task=task, device=device, precision=precision,
                            scaler=make_scaler(precision, device), progress=False, **options) for _ in range(epochs)]


def test_gradient_accumulation_equals_a_larger_batch():
    images, target = tiny_data(n=16)
    runs = []
    for batch_size, accum in ((8, 1), (4, 2)):
        torch.manual_seed(0)
        model = tiny_net()
        loader = DataLoader(TensorDataset(images, target), batch_size=batch_size)
        _sgd_epochs(model, loader, lr=0.1, epochs=2, grad_accum_steps=accum)
        runs.append(model)
    for key, value in runs[0].state_dict().items():
        torch.testing.assert_close(value, runs[1].state_dict()[key], rtol=1e-5, atol=1e-6)


def test_gradient_clipping_bounds_the_step():
    images, target = tiny_data(n=8)
    torch.manual_seed(0)
    model = tiny_net()
    before = _weights(model)
    loader = DataLoader(TensorDataset(images, target), batch_size=8)
    _sgd_epochs(model, loader, lr=1.0, clip_grad_norm=1e-3)
    # one SGD step: ||delta theta|| = lr * ||clipped gradient|| <= 1.0 * 1e-3
    delta = torch.cat([(v - before[k]).flatten() for k, v in model.state_dict().items()])
    assert 0 < delta.norm().item() <= 1e-3 + 1e-7


def test_poly_schedule_decays_to_zero(loaders, ce):
    train, _ = loaders
    model = tiny_net()
    history = fit(model, train, loss_fn=ce, epochs=2, lr=0.1, optimizer="sgd", scheduler="poly", progress=False,
                  verbose=False)
    # 4 steps per epoch: epoch 2 starts at step 4 of 8 -> lr = 0.1 * (1 - 4/8) ** 0.9
    assert history["lr"] == pytest.approx([0.1, 0.1 * 0.5 ** 0.9])


def test_onecycle_schedule_warms_up_then_anneals(loaders, ce):
    train, _ = loaders
    history = fit(tiny_net(), train, loss_fn=ce, epochs=3, lr=0.1, scheduler="onecycle", progress=False,
                  verbose=False)
    # 4 steps per epoch, 12 in all: epoch 2 starts at step 4, past the 10 % warm-up, on the way down
    assert history["lr"][0] == pytest.approx(0.1 / 25)            # OneCycleLR starts at max_lr / 25
    assert 0.1 / 25 < history["lr"][2] < history["lr"][1] <= 0.1


def test_scheduler_and_optimizer_are_names_with_one_meaning(loaders, ce):
    # a string scheduler used to step per iteration and an instance per epoch; now every schedule is a name,
    # stepped after every optimizer step, and an instance (scheduler or optimizer) is refused with a pointer
    train, _ = loaders
    model = tiny_net()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(ValueError, match="scheduler must be None or one of 'poly', 'cosine', 'onecycle'.*StepLR"):
        fit(model, train, loss_fn=ce, epochs=1, scheduler=torch.optim.lr_scheduler.StepLR(opt, 1), progress=False)
    with pytest.raises(ValueError, match="optimizer must be one of 'adamw', 'adam', 'sgd'.*a SGD.*train_one_epoch"):
        fit(model, train, loss_fn=ce, epochs=1, optimizer=opt, progress=False)


# ---------------------------------------------------------------------------------------------
# stopping
# ---------------------------------------------------------------------------------------------


def test_early_stopping_after_patience_epochs_without_improvement(loaders, ce):
    train, val = loaders
    # lr = 0: the score never changes, so epoch 1 is best and epochs 2, 3 are two bad epochs
    history = fit(tiny_net(), train, val, loss_fn=ce, epochs=10, lr=0.0, early_stopping=2, progress=False,
                  verbose=False)
    assert len(history) == 3 and history.stop_reason == "early_stopping"
    assert history.best["epoch"] == 1


def test_max_seconds_cuts_the_epoch_and_still_validates(loaders, ce):
    train, val = loaders
    history = fit(tiny_net(), train, val, loss_fn=ce, max_seconds=0.0, progress=False, verbose=False)
    assert len(history) == 1 and history.stop_reason == "max_seconds"
    assert "val_miou" in history.records[0]


# ---------------------------------------------------------------------------------------------
# options and argument errors
# ---------------------------------------------------------------------------------------------


def test_log_dir_without_tensorboard_is_an_error_before_training(loaders, ce, tmp_path, monkeypatch):
    from segcourse.train import run_log

    monkeypatch.setattr(run_log, "tensorboard_available", lambda: False)
    train, val = loaders
    model = tiny_net()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ImportError, match=r"log_dir.*'tensorboard' package"):
        fit(model, train, val, loss_fn=ce, epochs=1, log_dir=tmp_path / "tb", progress=False, verbose=False)
    assert not (tmp_path / "tb").exists()
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))  # it stopped before any step


def test_tensorboard_events_hold_the_history(loaders, ce, tmp_path):
    """The real writer: the events file read back with TensorBoard's own reader (a pinned dependency)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train, val = loaders
    torch.manual_seed(0)
    history = fit(tiny_net(), train, val, loss_fn=ce, epochs=2, log_dir=tmp_path / "tb", progress=False,
                  verbose=False)
    (events,) = (tmp_path / "tb").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/train_loss", "val/val_loss", "val/val_miou", "run/lr", "run/seconds"} <= set(tags["scalars"])
    for tag, key in (("train/train_loss", "train_loss"), ("val/val_miou", "val_miou")):
        logged = acc.Scalars(tag)
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == pytest.approx([r[key] for r in history.records], rel=1e-6)
    (image,) = acc.Images("val/image_truth_prediction")[:1]
    # four validation images side by side, each one image | truth | prediction (16 x 16 pixels each)
    assert image.step == 1 and (image.width, image.height) == (4 * 3 * 16, 16)


def test_progress_bars_render_as_text(loaders, ce, capsys):
    train, val = loaders
    fit(tiny_net(), train, val, loss_fn=ce, epochs=1, progress=True, verbose=False)
    assert "epoch 1/1" in capsys.readouterr().err


def test_cpu_bf16_and_channels_last_train_like_float32(loaders, ce):
    # Compare what training *changed*, not where the weights ended up: four steps move a weight by far less
    # than any tolerance on the weights themselves, so that check passed even if bf16 training did nothing.
    # Plain SGD, so each step is -lr x gradient and the change measures the bf16 gradients themselves
    # (Adam's first steps are about lr x sign(gradient), blind to their size).
    train, _ = loaders
    deltas, losses = [], []
    for amp, cl in (("off", False), ("bf16", True)):
        seed_everything(0)
        model = tiny_net()
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        stats = _sgd_epochs(model, train, lr=0.5, amp=amp, channels_last=cl)
        deltas.append(torch.cat([p.detach().flatten() for p in model.parameters()]) - before)
        losses.append(stats[-1]["loss"])
    fp32, bf16 = deltas
    assert fp32.norm() > 0.1                                    # the steps are large enough to compare
    assert not torch.equal(bf16, fp32)                          # autocast really ran the bf16 kernels
    # bf16 keeps ~3 significant digits: the change agrees to 5% (measured 0.5%); a bf16 run that did not
    # train (change 0) or stepped the wrong way would be 100% or more off
    assert (bf16 - fp32).norm() <= 0.05 * fp32.norm()
    assert torch.nn.functional.cosine_similarity(bf16, fp32, dim=0) > 0.99
    assert losses[1] == pytest.approx(losses[0], rel=1e-2) and losses[1] != losses[0]


def test_validation_inside_fit_runs_in_float32_like_evaluate(loaders, ce, capsys):
    # training in bf16 must not leak into validation: the last epoch's validation scores are those
    # of the final weights, so they must equal a separate fp32 evaluate() of the same model
    train, val = loaders
    seed_everything(0)
    model = tiny_net()
    history = fit(model, train, val, loss_fn=ce, epochs=2, lr=2e-2, amp="bf16", progress=False)
    assert "amp=bf16 channels_last=off (validation in float32)" in capsys.readouterr().out
    fp32 = evaluate(model, val, 2, loss_fn=ce)
    bf16 = evaluate(model, val, 2, loss_fn=ce, amp="bf16")
    assert fp32["loss"] != bf16["loss"]                     # the two precisions are distinguishable here
    assert history[-1]["val_loss"] == pytest.approx(fp32["loss"], rel=1e-12)
    assert history[-1]["val_miou"] == pytest.approx(fp32["miou"], rel=1e-12)


def test_val_amp_asks_for_mixed_precision_validation(loaders, ce):
    train, val = loaders
    seed_everything(0)
    model = tiny_net()
    history = fit(model, train, val, loss_fn=ce, epochs=1, amp="bf16", val_amp="bf16", progress=False, verbose=False)
    assert history[-1]["val_loss"] == pytest.approx(evaluate(model, val, 2, loss_fn=ce, amp="bf16")["loss"], rel=1e-12)


@pytest.mark.parametrize("kwargs, error, match", [
    ({}, ValueError, "epochs"),
    ({"epochs": 0}, ValueError, "positive"),
    ({"epochs": 1, "grad_accum_steps": 0}, ValueError, "grad_accum_steps"),
    ({"epochs": 1, "early_stopping": 0}, ValueError, "early_stopping"),
    ({"epochs": 1, "optimizer": "lbfgs"}, ValueError, "optimizer"),
    ({"epochs": 1, "scheduler": "step"}, ValueError, "scheduler"),
    ({"max_seconds": 1, "scheduler": "poly"}, ValueError, "needs epochs"),
    ({"epochs": 1, "amp": "fp16"}, ValueError, "bf16"),
    ({"epochs": 1, "monitor": "val_nonsense"}, ValueError, "val_miou"),
    ({"epochs": 1, "resume": True}, ValueError, "checkpoint"),
])
def test_fit_rejects_bad_arguments(loaders, ce, kwargs, error, match):
    train, val = loaders
    with pytest.raises(error, match=match):
        fit(tiny_net(), train, val, loss_fn=ce, progress=False, verbose=False, **kwargs)


def test_fit_ignore_index_reaches_the_loss_or_is_refused(loaders):
    # issue 24: fit(ignore_index=0) only reached the metrics, so a loss built without it trained on the
    # class-0 pixels the scores skipped. Now the loss and the metrics skip one value, or fit refuses.
    import segcourse.losses as L

    train, val = loaders
    quiet = {"epochs": 1, "progress": False, "verbose": False}
    with pytest.raises(ValueError, match="ignore_index=0 but loss_fn skips target value -100"):
        fit(tiny_net(), train, val, loss_fn=nn.CrossEntropyLoss(), ignore_index=0, **quiet)
    with pytest.raises(ValueError, match="ignore_index=0 but loss_fn skips target value 255"):
        fit(tiny_net(), train, val, loss_fn=L.CEDiceLoss(), ignore_index=0, **quiet)
    with pytest.raises(ValueError, match="does not say which target value it skips"):
        fit(tiny_net(), train, val, loss_fn=lambda logits, target: nn.functional.cross_entropy(logits, target),
            ignore_index=0, **quiet)
    # agreeing, or left unset (then the loss's own value): the metrics skip what the loss skips
    for options in ({"ignore_index": 0}, {}):
        history = fit(tiny_net(), train, val, loss_fn=nn.CrossEntropyLoss(ignore_index=0), **options, **quiet)
        assert math.isnan(history[-1]["val_recall_per_class"][0])  # no class-0 truth pixel was counted
        assert not math.isnan(history[-1]["val_recall_per_class"][1])
    history = fit(tiny_net(), train, val, loss_fn=L.CEDiceLoss(), ignore_index=IGNORE_INDEX, **quiet)
    assert not math.isnan(history[-1]["val_recall_per_class"][0])


def test_an_explicit_monitor_is_honoured(loaders, ce):
    train, val = loaders
    history = fit(tiny_net(), train, val, loss_fn=ce, monitor="val_fg_dice", epochs=1, progress=False, verbose=False)
    assert history.monitor == "val_fg_dice" and history.mode == "max"
    history = fit(tiny_net(), train, val, loss_fn=ce, epochs=1, progress=False, verbose=False)
    assert history.monitor == "val_miou" and history.mode == "max"  # unset: the segmentation task's


def test_fit_needs_a_loss(loaders):
    with pytest.raises(TypeError, match="loss_fn"):
        fit(tiny_net(), loaders[0], loss_fn=None, epochs=1)


def test_a_nan_loss_stops_with_advice(loaders):
    def nan_loss(logits, target):
        return logits.sum() * float("nan")

    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(tiny_net(), loaders[0], loss_fn=nan_loss, epochs=1, progress=False, verbose=False)


# ---------------------------------------------------------------------------------------------
# other shapes of models and batches
# ---------------------------------------------------------------------------------------------


class _DictOutput(nn.Module):
    """Returns ``{"out": logits}`` like torchvision's segmentation models."""

    def __init__(self):
        super().__init__()
        self.net = tiny_net()

    def forward(self, x):
        return {"out": self.net(x), "aux": None}


class _DictBatches(torch.utils.data.Dataset):
    """Albumentations-style items: ``{"image": float (3, H, W), "mask": uint8 (H, W)}``."""

    def __init__(self):
        self.images, self.target = tiny_data(n=8)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "mask": self.target[i].to(torch.uint8)}


def test_dict_outputs_dict_batches_and_uint8_masks_are_accepted(ce):
    loader = DataLoader(_DictBatches(), batch_size=4)
    model = _DictOutput()
    history = fit(model, loader, loader, loss_fn=ce, epochs=1, progress=False, verbose=False)
    assert "val_miou" in history.records[0]
    images = _DictBatches().images
    with torch.no_grad():
        assert torch.equal(predict(model, images), model.net(images).argmax(1))


def test_a_model_returning_something_else_is_explained():
    class Bad(nn.Module):
        def forward(self, x):
            return [x]

    with pytest.raises(TypeError, match="expected logits"):
        predict(Bad(), torch.zeros(1, 3, 4, 4))


class _Writer:
    """A stand-in SummaryWriter that keeps what it is given."""

    def __init__(self):
        self.scalars, self.images = {}, {}

    def add_scalar(self, tag, value, step):
        self.scalars[tag] = (value, step)

    def add_images(self, tag, images, step):
        self.images[tag] = (images, step)

    def flush(self):
        pass


def test_tensorboard_logger_writes_scalars_and_the_prediction_grid():
    from segcourse.train.run_log import TensorBoardLogger

    images = torch.rand(3, 3, 4, 5)
    target = torch.tensor([[0, 1, 2, 7, 7]]).expand(3, 4, 5).clone()  # 7: this run's ignore value
    pred = torch.full((3, 4, 5), 2)
    writer = _Writer()
    record = {"epoch": 3, "train_loss": 0.5, "val_miou": 0.7, "val_iou_per_class": [0.6, 0.8], "lr": 1e-3}
    TensorBoardLogger(writer, num_images=2, ignore_index=7).log_epoch(record, (images, target, pred))
    assert writer.scalars == {"train/train_loss": (0.5, 3), "val/val_miou": (0.7, 3), "run/lr": (1e-3, 3)}
    grid, step = writer.images["val/image_truth_prediction"]
    assert step == 3 and grid.shape == (2, 3, 4, 15)  # num_images of them: image | truth | prediction
    truth, shown_pred = grid[:, 0, :, 5:10], grid[:, 0, :, 10:]
    assert truth[0, 0].tolist() == [0.0, 0.5, 1.0, 0.0, 0.0]  # ids / max id; ignored pixels shown as 0
    assert torch.all(shown_pred == 1.0)
    assert float(grid.min()) >= 0 and float(grid.max()) <= 1


def test_fit_hands_the_logger_the_validation_pass_predictions(loaders, ce, tmp_path, monkeypatch):
    """The logger runs no forward pass of its own: it gets (images, target, pred) from the validation."""
    from segcourse.train.run_log import TensorBoardLogger

    seen = []
    monkeypatch.setattr(TensorBoardLogger, "log_epoch", lambda self, record, examples=None: seen.append(examples))
    train, val = loaders
    model = tiny_net()
    fit(model, train, val, loss_fn=ce, epochs=1, log_dir=tmp_path / "tb", progress=False, verbose=False)
    ((images, target, pred),) = seen
    first_images, first_target = next(iter(val))
    assert torch.equal(images, first_images[:4]) and torch.equal(target, first_target[:4])
    assert torch.equal(pred, predict(model, first_images[:4], device="cpu"))


# ---------------------------------------------------------------------------------------------
# FitConfig: the options of fit in one dataclass
# ---------------------------------------------------------------------------------------------


def test_a_fit_config_trains_exactly_like_the_keywords(loaders, ce):
    from segcourse.train import FitConfig

    train, val = loaders
    runs = []
    for call in ("keywords", "config", "config+override"):
        torch.manual_seed(0)
        model = tiny_net()
        if call == "keywords":
            history = fit(model, train, val, loss_fn=ce, epochs=2, lr=0.05, scheduler="poly", progress=False,
                          verbose=False)
        elif call == "config":
            history = fit(model, train, val, FitConfig(loss_fn=ce, epochs=2, lr=0.05, scheduler="poly",
                                                       progress=False, verbose=False))
        else:
            cfg = FitConfig(loss_fn=ce, epochs=2, lr=1.0, scheduler="poly", progress=False, verbose=False)
            history = fit(model, train, val, cfg, lr=0.05)
            assert cfg.lr == 1.0  # the override does not change the config it was given
        runs.append(([{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history.records],
                     [p.detach().clone() for p in model.parameters()]))
    for records, params in runs[1:]:
        assert records == runs[0][0]
        assert all(torch.equal(p, q) for p, q in zip(params, runs[0][1]))


def test_an_unknown_fit_option_is_named():
    from segcourse.train import fit_config

    with pytest.raises(TypeError, match=r"unknown option\(s\) epoch, learning_rate.*FitConfig"):
        fit_config(epoch=3, learning_rate=0.1)
    with pytest.raises(TypeError, match="FitConfig, got dict"):
        fit_config({"epochs": 3})


def test_the_optimizer_and_scheduler_factories():
    from segcourse.train import build_optimizer, build_scheduler

    model = tiny_net()
    sgd = build_optimizer("sgd", model, lr=0.1, weight_decay=0.0)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    assert isinstance(build_optimizer("adamw", model, lr=0.1, weight_decay=0.0), torch.optim.AdamW)
    poly = build_scheduler("poly", sgd, total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(sgd.param_groups[0]["lr"])
        sgd.step()
        poly.step()
    assert lrs == pytest.approx([0.1 * (1 - t / 10) ** 0.9 for t in range(10)])  # DeepLab's poly over 10 steps
    assert build_scheduler(None, sgd, total_steps=10) is None
    with pytest.raises(ValueError, match="scheduler must be None or one of"):
        build_scheduler("step", sgd, total_steps=10)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        build_optimizer("lion", model, lr=0.1, weight_decay=0.0)


def test_the_three_tasks_are_tasks_and_anything_else_is_refused(loaders):
    from segcourse.models.mask2former import Mask2FormerTask, SetCriterion
    from segcourse.train import DetectionTask, SegmentationTask, Task

    tasks = (SegmentationTask(nn.CrossEntropyLoss()), DetectionTask(), Mask2FormerTask(SetCriterion(3)))
    assert all(isinstance(task, Task) for task in tasks)
    assert [(t.monitor, t.mode) for t in tasks] == [("val_miou", "max"), ("val_loss", "min"), ("val_loss", "min")]
    with pytest.raises(TypeError, match="task must provide monitor, mode, to_device"):
        fit(tiny_net(), loaders[0], task=object(), epochs=1)


@pytest.mark.parametrize("total", [1, 2, 3, 5, 10, 11])
def test_onecycle_with_few_steps_warms_up_and_anneals_without_dividing_by_zero(total):
    net = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = build_scheduler("onecycle", optimizer, total)
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert len(lrs) == total and all(0 < lr <= 0.1 + 1e-12 for lr in lrs)
    if total >= 3:
        assert lrs[0] < max(lrs) and lrs[-1] < max(lrs)             # up, then down
