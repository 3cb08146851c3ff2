"""pretrained=True never downloads: weights come from the local torch hub cache or training starts from scratch."""

from __future__ import annotations

import socket
import warnings

import pytest
import torch

from segcourse.models import deeplabv3, fcn
from segcourse.models.pretrained import cached_weights_path, load_cached_weights, weights_url


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("segcourse tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_cached_path_is_torchvision_file_name(empty_hub):
    url = weights_url("resnet50")
    path = cached_weights_path("resnet50")
    assert path.parent == empty_hub / "checkpoints"
    assert path.name == url.rsplit("/", 1)[-1] and path.suffix == ".pth"


def test_missing_weights_warn_and_return_none(empty_hub, no_network):
    with pytest.warns(UserWarning, match=r"no pretrained weights cached at .*resnet50.*; training from scratch"):
        assert load_cached_weights("resnet50") is None


def test_pretrained_model_builds_offline_from_scratch(empty_hub, no_network):
    torch.set_num_threads(1)
    with pytest.warns(UserWarning, match="training from scratch"):
        model = deeplabv3(3, "resnet50", output_stride=16, pretrained=True)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    assert model.pretrained_loaded is False  # the result says it trains from scratch, not only the warning


def test_cached_weights_are_loaded(empty_hub, no_network):
    # put a "downloaded" file where torchvision keeps it: the backbone must come up with those weights
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None)
    path = cached_weights_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "training from scratch" warning
        model = fcn(2, "32s", "resnet18", pretrained=True, head="torchvision", up="bilinear")
    torch.testing.assert_close(model.encoder.conv1.weight, reference.conv1.weight)
    torch.testing.assert_close(model.encoder.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert model.pretrained_loaded is True


def test_corrupt_cache_file_warns_instead_of_crashing(empty_hub, no_network):
    path = cached_weights_path("resnet50")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"truncated download")
    with pytest.warns(UserWarning, match="could not read pretrained weights"):
        assert load_cached_weights("resnet50") is None


def test_errors():
    with pytest.raises(ValueError, match="no pretrained weights known"):
        weights_url("resnet_tiny")
    with pytest.raises(ValueError, match="torchvision backbone"):
        fcn(2, "8s", "vgg_tiny", pretrained=True)


@pytest.mark.parametrize("cached", ["resnet18 weights", "a tensor"])
def test_cached_file_of_another_architecture_warns_and_trains_from_scratch(empty_hub, no_network, cached):
    # resnet34's file name holds resnet18's weights (or no state dict at all): warn, never crash, never half-load
    import torchvision

    path = cached_weights_path("resnet34")
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    other = torchvision.models.resnet18(weights=None)
    torch.save(other.state_dict() if cached == "resnet18 weights" else torch.zeros(3), path)
    with pytest.warns(UserWarning, match=r"do not fit torchvision's resnet34 .*Training from scratch"):
        model = fcn(2, "32s", "resnet34", pretrained=True, head="torchvision", up="bilinear")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2, 32, 32)
    # conv1 has the same shape in both: it must not have been copied from the wrong file
    assert not torch.equal(model.encoder.conv1.weight, other.conv1.weight)
    assert model.pretrained_loaded is False


def test_fit_records_whether_pretrained_weights_were_loaded(empty_hub, no_network):
    """pretrained=True with nothing cached warns and trains from scratch; the history records it."""
    from torch.utils.data import DataLoader, TensorDataset

    from segcourse.train import fit

    torch.manual_seed(0)
    images, target = torch.rand(2, 3, 32, 32), torch.randint(0, 2, (2, 32, 32))
    loader = DataLoader(TensorDataset(images, target), batch_size=2)
    with pytest.warns(UserWarning, match="no pretrained weights cached.*training from scratch"):
        model = fcn(2, "32s", "resnet18", pretrained=True, head="torchvision", up="bilinear")
    history = fit(model, loader, loader, loss_fn=torch.nn.CrossEntropyLoss(), epochs=1, device="cpu",
                  progress=False, verbose=False)
    assert history.pretrained_loaded is False
    assert fcn(2, "8s", "vgg_tiny", width=4).pretrained_loaded is None  # not asked for
