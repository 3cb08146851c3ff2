"""ONNX export: dynamic sizes, ONNX Runtime parity with PyTorch, the export command."""

from __future__ import annotations

import onnxruntime  # noqa: F401  (pinned: a broken install must fail here, by name, not skip the file)
import pytest
import torch

from segcourse.__main__ import main
from segcourse.deploy import DeployModel, OnnxPredictor, deployable, export_onnx, max_logit_difference
from segcourse.models.unet import unet
from segcourse.train import save_checkpoint

SIZES = [(64, 64), (97, 75), (33, 50), (16, 17), (128, 129)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = unet(in_channels=3, num_classes=3, depth=3, base_channels=8)
    # non-trivial batch-norm statistics, so that eval mode matters
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(4, 3, 32, 32) * 2)
    return net.eval()


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "unet.onnx")


def test_deploy_model_is_the_model_on_multiples_and_keeps_odd_sizes(model):
    wrapped = deployable(model)
    assert isinstance(wrapped, DeployModel) and wrapped.multiple == 8
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(wrapped(x), model(x))
        assert wrapped(torch.rand(1, 3, 13, 21)).shape == (1, 3, 13, 21)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_runtime_equals_pytorch_on_several_sizes(model, onnx_path, batch):
    diffs = max_logit_difference(model, OnnxPredictor(onnx_path, threads=1), SIZES, batch=batch)
    assert max(diffs.values()) <= 1e-4, diffs


def test_metadata_and_predictor_shapes(onnx_path):
    predictor = OnnxPredictor(onnx_path, threads=1)
    assert predictor.num_classes == 3 and predictor.in_channels == 3
    assert predictor.metadata["multiple"] == "8"
    out = predictor(torch.rand(2, 3, 40, 30).numpy())
    assert out.shape == (2, 3, 40, 30) and out.dtype == torch.float32


def test_export_command_writes_a_checked_model(model, tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "unet.safetensors", model,
                           config={"model": "unet", "model_kwargs": {"num_classes": 3, "depth": 3, "base_channels": 8}})
    out = tmp_path / "out" / "unet.onnx"
    assert main(["export", str(ckpt), "--onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "parity ok" in printed and out.exists()
    assert max(max_logit_difference(model, OnnxPredictor(out, threads=1), [(45, 61)]).values()) <= 1e-4


def test_export_command_reports_a_missing_or_corrupt_checkpoint(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.safetensors"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 10)
    assert main(["export", str(bad), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "error" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_quantisation_keeps_the_output_close(model, onnx_path, tmp_path, mode):
    from segcourse.deploy.quantize import quantize_onnx

    calib = torch.rand(4, 3, 32, 32)
    path = quantize_onnx(onnx_path, tmp_path / f"{mode}.onnx", mode=mode, calibration=calib)
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        want = deployable(model)(x)
    got = OnnxPredictor(path, threads=1)(x)
    assert got.shape == want.shape
    assert (got - want).abs().max() < 0.25 * want.abs().max()       # int8: close, not equal
    assert not list(tmp_path.glob("*.pre.onnx"))


def test_static_quantisation_needs_calibration(onnx_path, tmp_path):
    from segcourse.deploy.quantize import quantize_onnx

    with pytest.raises(ValueError, match="calibration"):
        quantize_onnx(onnx_path, tmp_path / "s.onnx", mode="static")
    with pytest.raises(ValueError, match="mode"):
        quantize_onnx(onnx_path, tmp_path / "s.onnx", mode="fp8")


def test_torch_export_with_dynamic_sides(model):
    from torch.export import Dim, export

    wrapped = deployable(model)
    dynamic = {"x": {0: Dim("batch", min=1, max=8), 2: 8 * Dim("hu", min=1, max=64), 3: 8 * Dim("wu", min=1, max=64)}}
    program = export(wrapped, (torch.rand(2, 3, 32, 32),), dynamic_shapes=dynamic)
    x = torch.rand(3, 3, 40, 96)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), wrapped(x), rtol=0, atol=1e-5)


def test_torch_export_cannot_prove_any_side_and_guards_the_declared_multiples(model):
    # what lesson 10 says about torch.export: sides declared as plain Dims are refused (the decoder's
    # "is this map's size even?" branch cannot be proved for the padding arithmetic), 8 * Dim is accepted,
    # and the exported program then refuses a side that is not a multiple of 8 instead of answering wrongly;
    # padding outside the program (DeployModel around the exported module) serves every size again
    from torch.export import Dim, export

    wrapped = deployable(model)
    assert wrapped.multiple == 8
    any_side = {"x": {0: Dim("batch", min=1, max=8), 2: Dim("h", min=1, max=512), 3: Dim("w", min=1, max=512)}}
    with pytest.raises(Exception, match="Constraints violated"):
        export(wrapped, (torch.rand(2, 3, 32, 32),), dynamic_shapes=any_side)
    multiples = {"x": {0: Dim("batch", min=1, max=8), 2: 8 * Dim("hu", min=1, max=64), 3: 8 * Dim("wu", min=1, max=64)}}
    program = export(wrapped, (torch.rand(2, 3, 32, 32),), dynamic_shapes=multiples).module()
    odd = torch.rand(1, 3, 37, 45)
    with pytest.raises(Exception, match="[Gg]uard"):
        program(odd)
    with torch.no_grad():
        torch.testing.assert_close(DeployModel(program, 8)(odd), wrapped(odd), rtol=0, atol=1e-5)


@pytest.mark.parametrize("text, want", [
    ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_int8\n", ["avx512_vnni", "amx_int8"]),
    ("processor\t: 0\nflags\t\t: fpu sse2 avx2\n", []),                           # no int8 dot products
    ("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\n", ["asimddp", "i8mm"]),  # ARM spells it Features
    ("flags\t\t: avx_vnni\nflags\t\t: avx_vnni\n", ["avx_vnni"]),                  # one line per core, once
])
def test_int8_instructions_reads_the_cpu_flags(text, want):
    from segcourse.deploy.quantize import int8_instructions

    assert int8_instructions(text) == want


def test_int8_instructions_of_this_machine_is_a_list_or_unknown():
    from pathlib import Path

    from segcourse.deploy.quantize import INT8_FLAGS, int8_instructions

    found = int8_instructions()
    if Path("/proc/cpuinfo").exists():
        assert isinstance(found, list) and set(found) <= set(INT8_FLAGS)
    else:
        assert found is None
