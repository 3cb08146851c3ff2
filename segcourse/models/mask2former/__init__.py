"""A small, readable Mask2Former: mask classification for semantic and panoptic segmentation.

Instead of one class per pixel, the model predicts ``Q`` (class, mask) pairs; training matches them
to the ground-truth segments one-to-one (Hungarian matching) and inference turns them into a semantic
map (``einsum("qc,qhw->chw")``) or a panoptic one (score and overlap thresholds).

* :mod:`.attention` -- masked attention and its empty-mask fallback;
* :mod:`.model` -- backbone (``resnet_tiny``), FPN pixel decoder, masked-attention transformer decoder with
  learnable queries fed the feature levels round-robin, class and mask heads, per-layer predictions;
* :mod:`.losses` -- point sampling, pairwise and matched BCE / Dice, uncertainty-based importance sampling;
* :mod:`.matcher` -- the matching cost and ``scipy.optimize.linear_sum_assignment``;
* :mod:`.criterion` -- the set loss with auxiliary losses on every decoder layer;
* :mod:`.inference` -- semantic and panoptic inference; diagnostics of it (``query_verdicts``,
  ``thing_coverage``) and a per-pixel panoptic baseline (semantic map + connected components);
* :mod:`.train` -- targets from panoptic maps, the task and batches that train it with ``segcourse.train.fit``,
  batched prediction.

Checked against Hugging Face ``transformers``' Mask2Former with the same weights and inputs (tests in
``tests/models/mask2former/``): point sampling, the matcher, the mask losses, the masked-attention decoder layer
and the whole transformer decoder, the class / no-object loss and the whole criterion with auxiliary losses,
semantic and panoptic inference (where the conventions differ, the docstrings name the difference and the
tests check it).

References:
    Cheng, Misra, Schwing, Kirillov, Girdhar, "Masked-attention Mask Transformer for Universal Image
    Segmentation", CVPR 2022, https://arxiv.org/abs/2112.01527.
    Cheng, Schwing, Kirillov, "Per-Pixel Classification is Not All You Need for Semantic Segmentation"
    (MaskFormer), NeurIPS 2021, https://arxiv.org/abs/2107.06278.
"""

from .attention import MaskedCrossAttention, attention_mask_from_logits, masked_attention
from .criterion import SetCriterion, mask_losses
from .inference import (
    VOID,
    panoptic_from_semantic,
    panoptic_inference,
    query_verdicts,
    semantic_inference,
    thing_coverage,
)
from .losses import (
    matched_dice_loss,
    pairwise_dice,
    pairwise_sigmoid_ce,
    sample_points,
    sigmoid_ce_loss,
    uncertain_points,
)
from .matcher import hungarian, match, matching_cost
from .model import FPNPixelDecoder, Mask2Former, Mask2FormerConfig, TransformerDecoderLayer, mask2former
from .train import (
                    Mask2FormerTask,
                    PanopticBatches,
                    panoptic_targets,
                    predict_outputs,
                    predict_panoptic,
                    predict_semantic,
)

__all__ = [
    "Mask2Former", "Mask2FormerConfig", "mask2former", "FPNPixelDecoder", "TransformerDecoderLayer",
    "MaskedCrossAttention", "attention_mask_from_logits", "masked_attention",
    "SetCriterion", "mask_losses", "match", "matching_cost", "hungarian",
    "sample_points", "pairwise_sigmoid_ce", "pairwise_dice", "sigmoid_ce_loss", "matched_dice_loss", "uncertain_points",
    "semantic_inference", "panoptic_inference", "query_verdicts", "thing_coverage", "panoptic_from_semantic", "VOID",
    "panoptic_targets", "PanopticBatches", "Mask2FormerTask", "predict_outputs", "predict_panoptic", "predict_semantic",
]
