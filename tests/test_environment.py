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


def test_torch_pair_is_the_one_known_to_work():
    pins = _pins((ROOT / "requirements" / "course.txt").read_text().splitlines())
    assert (pins["torch"], pins["torchvision"]) == ("2.14.1", "0.29.1")
