"""The service's OpenAPI schema fuzzed by schemathesis, as a new API user would run it.

``schemathesis run URL/openapi.json --checks all`` against a real ``python -m segcourse serve`` on
127.0.0.1 and a free port (stopped by its PID): every answer must be documented (status, content
type, headers, JSON body), schema-valid requests accepted, invalid ones rejected with 4xx, methods a
route does not have answered 405 with ``Allow``. The hooks (``schemathesis_hooks.py``) make the
``file`` part real images of the declared media types. Deterministic (``--seed``, one worker) and
short (``--max-examples``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis  # noqa: F401  (pinned in requirements/test.txt: a missing install fails here, by name)
import torch

from segcourse.deploy import export_onnx
from segcourse.deploy.load import ServiceProcess
from segcourse.models.unet import unet

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzzed")
    torch.manual_seed(0)
    model = export_onnx(unet(in_channels=3, num_classes=2, depth=3, base_channels=8).eval(), folder / "unet.onnx",
                        metadata={"classes": '["ground", "building"]'})
    with ServiceProcess(model, "--max-upload-mb", "1", log=folder / "server.log") as srv:
        yield srv, folder


def test_schemathesis_all_checks_pass(service):
    srv, folder = service
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{srv.url}/openapi.json",
               "--checks", "all", "--max-examples", "25", "--seed", "20261205", "--workers", "1",
               "--report", "junit", "--report-dir", str(folder / "report")]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.deploy.schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
    log = (folder / "server.log").read_text()
    # the run reached every route, sent real images and unsupported methods: it tested what it claims
    assert '"POST /predict" 200' in log and '"GET /health" 200' in log and " 405 " in log
    assert srv.alive()
