import pytest
import torch

from segcourse import config


@pytest.mark.parametrize("value,expected", [("smoke", "smoke"), ("QUICK", "quick"), (" full ", "full")])
def test_mode_from_environment(monkeypatch, value, expected):
    monkeypatch.setenv("SEGCOURSE_MODE", value)
    assert config.get_mode() == expected


def test_auto_mode_follows_cuda(monkeypatch):
    monkeypatch.setenv("SEGCOURSE_MODE", "auto")
    monkeypatch.setattr(config, "_cuda_available", lambda: True)
    assert config.get_mode() == "full"
    monkeypatch.setattr(config, "_cuda_available", lambda: False)
    assert config.get_mode() == "quick"
    monkeypatch.delenv("SEGCOURSE_MODE")
    assert config.get_mode() == "quick"


def test_bad_mode_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("SEGCOURSE_MODE", "fast")
    with pytest.raises(ValueError, match=r"SEGCOURSE_MODE='fast'.*smoke, quick, full"):
        config.get_mode()
    with pytest.raises(ValueError, match="'turbo' is not one of"):
        config.set_mode("turbo")


def test_pick_returns_the_value_of_the_current_mode(monkeypatch):
    for mode, expected in [("smoke", 1), ("quick", 8), ("full", 40)]:
        monkeypatch.setenv("SEGCOURSE_MODE", mode)
        assert config.pick(smoke=1, quick=8, full=40) == expected


def test_mode_index_is_the_one_mode_table(monkeypatch):
    from segcourse.data.synthetic import DEFAULT_SIZE, default_size

    assert [config.mode_index(m) for m in config.MODES] == [0, 1, 2]
    for mode in config.MODES:
        monkeypatch.setenv("SEGCOURSE_MODE", mode)
        assert config.mode_index() == config.MODES.index(mode)
        assert default_size("cells") == DEFAULT_SIZE["cells"][config.mode_index()]
    with pytest.raises(ValueError, match="not one of"):
        config.mode_index("fast")


def test_seed_everything_repeats_random_streams():
    config.seed_everything(123)
    a = torch.rand(5), torch.randint(0, 10, (3,))
    config.seed_everything(123)
    b = torch.rand(5), torch.randint(0, 10, (3,))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_get_device_prefers_available_and_rejects_missing():
    assert config.get_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert config.get_device().type in ("cpu", "mps")
        with pytest.raises(ValueError, match="CUDA is not available"):
            config.get_device("cuda")


def test_describe_names_mode_and_device(monkeypatch):
    monkeypatch.setenv("SEGCOURSE_MODE", "smoke")
    line = config.describe()
    assert "mode=smoke" in line and "device=" in line and torch.__version__ in line
