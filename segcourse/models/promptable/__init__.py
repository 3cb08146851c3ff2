"""A tiny, promptable segmenter in the design of Segment Anything (SAM), trained here from scratch.

* :mod:`.prompt_encoder` -- random-Fourier positional encoding, point / box / padding embeddings;
* :mod:`.transformer` -- attention with a down-projection, the two-way attention block and transformer;
* :mod:`.mask_decoder` -- output tokens, hypernetwork masks (``K = 3`` for ambiguous prompts + 1) and the IoU head;
* :mod:`.model` -- a small CNN image encoder, a full-resolution boundary refiner and :class:`PromptableSegmenter` (``embed`` once, ``decode`` per click).

The prompt encoder, the two-way transformer and the mask decoder keep SAM's parameter names: with
copied weights they equal ``segment_anything.modeling`` (``tests/models/test_promptable.py``), and a real
SAM checkpoint's ``prompt_encoder.*`` / ``mask_decoder.*`` keys load into them (except SAM's mask-prompt
``mask_downscaling``, which the course's model does not have). SAM's loss is
:func:`segcourse.losses.promptable.sam_loss`.

Reference: Kirillov et al., "Segment Anything", ICCV 2023, https://arxiv.org/abs/2304.02643.
"""

from .mask_decoder import MLP, LayerNorm2d, MaskDecoder
from .model import (
    STRIDE,
    BoundaryRefiner,
    ImageEncoder,
    PromptableConfig,
    PromptableSegmenter,
    pick_mask,
    promptable_segmenter,
)
from .prompt_encoder import NEGATIVE, PADDING, POSITIVE, PositionEmbeddingRandom, PromptEncoder
from .transformer import Attention, MLPBlock, TwoWayAttentionBlock, TwoWayTransformer

__all__ = [
    "PositionEmbeddingRandom", "PromptEncoder", "POSITIVE", "NEGATIVE", "PADDING",
    "Attention", "MLPBlock", "TwoWayAttentionBlock", "TwoWayTransformer",
    "MLP", "LayerNorm2d", "MaskDecoder",
    "ImageEncoder", "BoundaryRefiner", "PromptableConfig", "PromptableSegmenter", "promptable_segmenter", "pick_mask", "STRIDE",
]
