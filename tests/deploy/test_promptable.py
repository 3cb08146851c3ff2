"""The prompt decoder exported to ONNX: parity with PyTorch at two image sizes and click counts."""

from __future__ import annotations

import pytest
import torch

from segcourse.deploy.promptable import OnnxPromptDecoder, click_vs_encoder_latency, export_prompt_decoder
from segcourse.models.promptable import promptable_segmenter


@pytest.mark.parametrize("clicks", [1, 3])
def test_onnx_prompt_decoder_equals_pytorch(tmp_path, clicks):
    torch.manual_seed(0)
    model = promptable_segmenter().eval()
    for size in (64, 96):                                     # one graph per image size, dynamic in the click count
        onnx_decoder = OnnxPromptDecoder(export_prompt_decoder(model, tmp_path / f"d{size}.onnx", image_size=size,
                                                               clicks=1 if clicks == 1 else 2))
        with torch.no_grad():
            embedding = model.embed(torch.rand(1, 3, size, size))
            points = torch.rand(1, clicks, 2) * size
            labels = torch.tensor([[1, 0, 1][:clicks]])
            want = model.decode(embedding, points, labels, multimask=clicks == 1)
        got = onnx_decoder(embedding, points, labels)
        assert got[0].shape == want[0].shape == (1, 3 if clicks == 1 else 1, size, size)
        torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got[1], want[1], rtol=1e-4, atol=1e-4)


def test_latency_keys():
    out = click_vs_encoder_latency(promptable_segmenter(), 64, repeats=1)
    assert set(out) == {"size", "encoder_s", "decoder_s", "ratio"} and out["encoder_s"] > 0
