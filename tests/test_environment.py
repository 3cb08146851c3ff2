"""The conda environment, the pip pins and the lock file must agree."""

from pathlib import Path

from segcourse.pins import parse_pins as _pins

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_pins_equal_requirements():
    pip_pins = _pins((ROOT / "requirements" / "course.txt").read_text().splitlines())
    conda_pins = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert pip_pins, "no pins found in requirements/course.txt"
    assert conda_pins == pip_pins, (
        "environment.yml and requirements/course.txt pin different versions: "
        f"only in pip {sorted(set(pip_pins.items()) - set(conda_pins.items()))}, "
        f"only in conda {sorted(set(conda_pins.items()) - set(pip_pins.items()))}"
    )


def test_lock_file_agrees_with_direct_pins():
    lock = _pins((ROOT / "requirements" / "lock.txt").read_text().splitlines())
    for name in ("course.txt", "test.txt", "site.txt", "build.txt"):
        for dist, version in _pins((ROOT / "requirements" / name).read_text().splitlines()).items():
            assert lock.get(dist) == version, f"requirements/{name} pins {dist}=={version} but lock.txt has {lock.get(dist)}; run `make lock`"


def test_torch_and_torchvision_pins_are_a_released_pair():
    """torchvision releases pair with one torch release: 0.(m + 15).x with torch 2.m.x (0.15 with 2.0, ...).
    The versions come from the lock the course installs from, so bumping them needs no edit here."""
    pins = _pins((ROOT / "requirements" / "lock.txt").read_text().splitlines())
    torch_version, vision_version = pins["torch"], pins["torchvision"]
    torch_major, torch_minor = (int(p) for p in torch_version.split(".")[:2])
    vision_major, vision_minor = (int(p) for p in vision_version.split(".")[:2])
    assert torch_major == 2 and (vision_major, vision_minor) == (0, torch_minor + 15), (
        f"requirements/lock.txt pins torch=={torch_version} with torchvision=={vision_version}, which is not the "
        f"torchvision release for it (0.{torch_minor + 15}.x); see https://github.com/pytorch/vision#installation")

