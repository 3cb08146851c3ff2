"""The course backbones: pre-trained once (smoke recipe here), cached by code and recipe, loaded by the lessons."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from segcourse.models import deeplabv3plus, fcn
from segcourse.train import course_backbones as cb
from segcourse.train.checkpoint import read_file


def _weights(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in encoder.state_dict().items()}


@pytest.mark.parametrize("name", ["vgg_tiny", "resnet_tiny"])
def test_build_is_cached_deterministic_and_loads_into_the_lesson_models(name, data_root, capsys):
    path = cb.build_course_backbone(name, "smoke")
    assert path.exists() and path.parent == data_root / "backbones" and name in path.name
    first = read_file(path)[0]
    mtime = path.stat().st_mtime_ns
    assert cb.build_course_backbone(name, "smoke") == path and path.stat().st_mtime_ns == mtime  # cached, not rebuilt

    encoder = cb.course_backbone(name, "smoke")
    assert encoder.pretrained_loaded is True
    assert "pre-trained as a" in capsys.readouterr().out
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(value, first[f"model.{key}"], rtol=0, atol=0)
    # the weights moved away from a fresh encoder's initialisation
    fresh = type(encoder)(width=16) if name == "resnet_tiny" else None
    if fresh is not None:
        assert any(not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), encoder.state_dict().values()))

    # a forced rebuild on the same machine gives the same weights, whatever the experiment's seed offset
    import os

    os.environ["SEGCOURSE_SEED_OFFSET"] = "100"
    try:
        cb.build_course_backbone(name, "smoke", force=True, log=lambda m: None)
    finally:
        del os.environ["SEGCOURSE_SEED_OFFSET"]
    again = read_file(path)[0]
    assert again.keys() == first.keys()
    for key in first:
        torch.testing.assert_close(again[key], first[key], rtol=0, atol=0)

    # the lesson models accept the encoder: FCN (lesson 03) and DeepLab at output strides 16 and 8 (lesson 05)
    if name == "vgg_tiny":
        model = fcn(4, "32s", "vgg_tiny", width=16)
        model.encoder.load_state_dict(encoder.state_dict())
    else:
        for os_ in (16, 8):
            model = deeplabv3plus(4, "resnet_tiny", output_stride=os_, width=16, aspp_channels=16,
                                  decoder_channels=16)
            model.encoder.load_state_dict(encoder.state_dict())
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 4, 64, 64)


def test_the_cache_key_follows_the_recipe(data_root, monkeypatch):
    before = cb.backbone_path("vgg_tiny", "smoke")
    changed = dataclasses.replace(cb.RECIPES["smoke"]["vgg_tiny"], epochs=2)
    monkeypatch.setitem(cb.RECIPES["smoke"], "vgg_tiny", changed)
    assert cb.backbone_path("vgg_tiny", "smoke") != before
    assert cb.backbone_path("vgg_tiny", "quick") != before  # one file per mode


def test_pretraining_uses_the_other_set_than_the_lesson_evaluates_on():
    for mode in cb.RECIPES:
        assert cb.recipe("vgg_tiny", mode).dataset == "shapes-multiscale"     # lesson 03 evaluates on shapes
        assert cb.recipe("resnet_tiny", mode).dataset == "shapes"             # lesson 05 on shapes-multiscale


def test_unknown_names_and_modes_are_refused():
    with pytest.raises(ValueError, match="no course backbone named 'vgg16'.*vgg_tiny"):
        cb.recipe("vgg16", "quick")
    with pytest.raises(ValueError, match="mode must be one of"):
        cb.recipe("vgg_tiny", "fast")


def test_command_line_builds_and_lists(data_root, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    cb.add_arguments(parser)
    assert cb.run(parser.parse_args(["list", "--mode", "smoke"])) == 0
    assert capsys.readouterr().out.count("not built") == 2
    assert cb.run(parser.parse_args(["build", "--mode", "smoke"])) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("vgg_tiny", "resnet_"))]
    assert [row[2] for row in rows] == ["cached", "cached"]


def test_a_new_version_replaces_the_older_ones_of_the_same_encoder_and_mode(data_root, monkeypatch):
    old = cb.build_course_backbone("vgg_tiny", "smoke", log=lambda m: None)
    other = cb.build_course_backbone("resnet_tiny", "smoke", log=lambda m: None)
    changed = dataclasses.replace(cb.RECIPES["smoke"]["vgg_tiny"], lr=1e-3)
    monkeypatch.setitem(cb.RECIPES["smoke"], "vgg_tiny", changed)
    new = cb.build_course_backbone("vgg_tiny", "smoke", log=lambda m: None)
    assert new != old and new.exists() and not old.exists()
    assert other.exists()  # another encoder is kept


def test_the_committed_quick_mode_backbones_match_the_code_and_recipes():
    """The gate's lessons 03 and 05 start from the committed quick-mode encoders (one fixed file, like
    downloaded weights): a change to the recipe or to the code behind the fingerprint makes them stale."""
    from segcourse.data.paths import repo_root

    folder = repo_root() / "datasets" / "backbones"
    for name, r in cb.RECIPES["quick"].items():
        expected = folder / f"{name}-quick-{cb.fingerprint(r)}.safetensors"
        found = sorted(p.name for p in folder.glob(f"{name}-quick-*.safetensors"))
        assert expected.is_file(), (
            f"the committed quick-mode course backbone {name} is stale or missing: expected {expected.name}, found "
            f"{found or 'none'}. Run `make backbones` (SEGCOURSE_MODE=quick), commit datasets/backbones/ and "
            "re-store lessons 03 and 05 (`make solutions LESSONS=\"03 05\"`).")
