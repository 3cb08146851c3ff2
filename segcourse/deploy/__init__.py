"""Deployment: export to ONNX, ONNX Runtime inference, and an HTTP prediction service.

* :mod:`~segcourse.deploy.export` -- :func:`export_onnx` (dynamic batch, height and width),
  :class:`OnnxPredictor` (an ONNX Runtime session used like a model), :class:`DeployModel`;
* :mod:`~segcourse.deploy.service` -- the FastAPI app behind ``python -m segcourse serve``
  (imported on demand: it needs fastapi).
"""

from .export import DeployModel, OnnxPredictor, deployable, export_onnx, max_logit_difference

__all__ = ["DeployModel", "OnnxPredictor", "deployable", "export_onnx", "max_logit_difference"]
