"""The service's container recipe: the Dockerfile installs requirements/serve.txt (pins equal to the course's),
runs the service as a non-root user, with CPU-only PyTorch and ONNX Runtime (no CUDA packages), and the build
context holds only what the image needs. (Building the image needs a Docker daemon, which CI does not have.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_serve_requirements_are_pinned_like_the_course():
    serve, course, lock = (_pins(ROOT / "requirements" / n) for n in ("serve.txt", "course.txt", "lock.txt"))
    assert {"torch", "onnxruntime", "fastapi", "uvicorn", "python-multipart", "pillow", "numpy"} <= set(serve)
    for name, version in serve.items():
        assert course.get(name) == version, f"{name}: serve.txt pins {version}, course.txt {course.get(name)}"
        assert lock.get(name.replace("-", "_"), lock.get(name)) == version, f"{name} is not pinned alike in lock.txt"
    assert not any(n.startswith(("nvidia", "onnxruntime-gpu")) for n in serve)


def test_dockerfile_is_cpu_only_non_root_and_runs_segcourse_serve():
    text = (ROOT / "Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu" in text and "-r requirements/serve.txt -c requirements/lock.txt" in text
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["python", "-m", "segcourse", "serve"', text, flags=re.MULTILINE)
    copied = re.findall(r"^COPY (.+) \S+$", text, flags=re.MULTILINE)
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "*"                                                 # everything out, then the allow-list
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for sources in copied:
        for source in sources.split():
            assert source.rstrip("/") in allowed, f"the Dockerfile copies {source}, which .dockerignore leaves out"
            assert (ROOT / source).exists()
