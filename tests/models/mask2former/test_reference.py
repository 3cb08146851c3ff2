"""Mask2Former against Hugging Face ``transformers`` with the same weights and inputs: the masked-attention
decoder layer and the whole transformer decoder, the class / no-object loss and the whole criterion
(``Mask2FormerLoss`` with its matcher, point-sampled mask losses and auxiliary losses, on the same random
points), and semantic and panoptic inference (``Mask2FormerImageProcessor``'s post-processing).

Where the course follows the original code (facebookresearch/Mask2Former) and ``transformers`` does not, or
the two differ in a convention, the difference is tested explicitly (names ending ``_differs``)."""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F
from transformers import Mask2FormerConfig, Mask2FormerImageProcessor
from transformers.models.mask2former import modeling_mask2former as hf

from segcourse.models.mask2former import (
    VOID,
    SetCriterion,
    TransformerDecoderLayer,
    attention_mask_from_logits,
    mask2former,
    panoptic_inference,
    semantic_inference,
)
from segcourse.models.mask2former.model import sine_position_encoding

WEIGHTS = {"loss_cross_entropy": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}   # the paper's 2, 5, 5


def _hf_config(*, dim=32, heads=4, ffn=64, layers=3, num_classes=4, num_points=60, no_object_weight=0.1):
    """A transformers config with the course model's sizes (``decoder_layers`` counts the initial prediction)."""
    return Mask2FormerConfig(num_labels=num_classes, hidden_dim=dim, mask_feature_size=dim, num_attention_heads=heads,
                             dim_feedforward=ffn, dropout=0.0, pre_norm=False, decoder_layers=layers + 1,
                             train_num_points=num_points, no_object_weight=no_object_weight,
                             class_weight=2.0, mask_weight=5.0, dice_weight=5.0)


@torch.no_grad()
def _copy_layer(ours: TransformerDecoderLayer, theirs: hf.Mask2FormerMaskedAttentionDecoderLayer) -> None:
    """Our layer's weights into transformers' (same architecture: post-norm cross -> self -> FFN)."""
    c = ours.cross
    theirs.cross_attn.in_proj_weight.copy_(torch.cat([c.q.weight, c.k.weight, c.v.weight]))
    theirs.cross_attn.in_proj_bias.copy_(torch.cat([c.q.bias, c.k.bias, c.v.bias]))
    theirs.cross_attn.out_proj.load_state_dict(c.out.state_dict())
    w, b = ours.self_attn.in_proj_weight.chunk(3), ours.self_attn.in_proj_bias.chunk(3)
    for i, proj in enumerate((theirs.self_attn.q_proj, theirs.self_attn.k_proj, theirs.self_attn.v_proj)):
        proj.weight.copy_(w[i])
        proj.bias.copy_(b[i])
    theirs.self_attn.out_proj.load_state_dict(ours.self_attn.out_proj.state_dict())
    theirs.fc1.load_state_dict(ours.ffn[0].state_dict())
    theirs.fc2.load_state_dict(ours.ffn[2].state_dict())
    theirs.cross_attn_layer_norm.load_state_dict(ours.norm1.state_dict())
    theirs.self_attn_layer_norm.load_state_dict(ours.norm2.state_dict())
    theirs.final_layer_norm.load_state_dict(ours.norm3.state_dict())


def _hf_attention_mask(mask_logits: torch.Tensor, size: tuple[int, int], heads: int) -> torch.Tensor:
    """transformers' attention mask, ``(B*heads, Q, h*w)`` bool: ``Mask2FormerMaskPredictor``'s threshold, then
    ``Mask2FormerMaskedAttentionDecoder``'s rule that a fully blocked row is unblocked (both copied verbatim)."""
    attention_mask = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    attention_mask = attention_mask.sigmoid().flatten(2).unsqueeze(1).repeat(1, heads, 1, 1)
    attention_mask = (attention_mask.flatten(0, 1) < 0.5).bool()
    where = (attention_mask.sum(-1) != attention_mask.shape[-1]).to(attention_mask.dtype)
    return attention_mask * where.unsqueeze(-1)


# ---- masked attention: one decoder layer ------------------------------------------------------------
def test_decoder_layer_with_masked_attention_equals_transformers():
    torch.manual_seed(0)
    b, q, d, heads, (h, w) = 2, 5, 32, 4, (6, 7)
    ours = TransformerDecoderLayer(d, heads, 64).eval()
    theirs = hf.Mask2FormerMaskedAttentionDecoderLayer(_hf_config(dim=d, heads=heads)).eval()
    _copy_layer(ours, theirs)
    g = torch.Generator().manual_seed(1)
    queries, query_pos = torch.randn(b, q, d, generator=g), torch.randn(b, q, d, generator=g)
    memory, memory_pos = torch.randn(b, h * w, d, generator=g), torch.randn(b, h * w, d, generator=g)
    mask_logits = torch.randn(b, q, 12, 14, generator=g) * 3
    mask_logits[0, 1] = -10.0                     # an empty mask: this query attends everywhere
    mask_logits[1, 2] = 10.0                      # a full mask
    mask_logits[1, 3] = -10.0
    mask_logits[1, 3, 2:8, 2:8] = 10.0            # a small mask
    blocked = attention_mask_from_logits(mask_logits, (h, w))                           # (B, Q, HW)
    theirs_mask = _hf_attention_mask(mask_logits, (h, w), heads)                        # (B*heads, Q, HW)
    torch.testing.assert_close(blocked.repeat_interleave(heads, 0), theirs_mask, rtol=0, atol=0)
    assert not blocked[0, 1].any() and 0 < blocked[1, 3].sum() < h * w - 4        # fallback and a real restriction
    want = theirs(queries.transpose(0, 1), 0, None, [memory_pos.transpose(0, 1)], query_pos.transpose(0, 1),
                  [memory.transpose(0, 1)], encoder_attention_mask=theirs_mask)[0].transpose(0, 1)
    got = ours(queries, query_pos, memory, memory_pos, blocked)
    torch.testing.assert_close(got, want)
    # the mask matters: plain cross-attention gives another result, except for the empty-mask query
    masked = ours.cross(queries, memory, query_pos, memory_pos, blocked)
    plain = ours.cross(queries, memory, query_pos, memory_pos, None)
    assert not torch.allclose(plain[1, 3], masked[1, 3], atol=1e-3)
    torch.testing.assert_close(plain[0, 1], masked[0, 1])


@pytest.mark.parametrize("h, w, dim", [(4, 6, 32), (5, 3, 16)])
def test_sine_position_encoding_differs_by_half_a_pixel_and_channel_order(h, w, dim):
    """The convention named in :func:`sine_position_encoding`: pixel ``i`` sits at ``(i + 0.5) / h`` (its
    centre), transformers' ``Mask2FormerSinePositionEmbedding`` at ``(i + 1) / h``; and the course stores
    ``[sin | cos]`` blocks where transformers interleaves ``sin, cos``. So the course's encoding is transformers'
    on a grid twice as fine (``(2i + 1) / 2h``), at the even rows and columns, with the channels permuted."""
    theirs = hf.Mask2FormerSinePositionEmbedding(num_position_features=dim // 2, normalize=True)
    fine = theirs((1, dim, 2 * h, 2 * w), "cpu", torch.float32)[0, :, ::2, ::2].flatten(1).T     # (h*w, dim)
    n = dim // 4
    order = [o + 2 * j + c for o in (0, dim // 2) for c in (0, 1) for j in range(n)]            # blocks <- interleaved
    torch.testing.assert_close(sine_position_encoding(h, w, dim), fine[:, order])
    coarse = theirs((1, dim, h, w), "cpu", torch.float32)[0].flatten(1).T
    assert not torch.allclose(sine_position_encoding(h, w, dim), coarse[:, order], atol=1e-2)


def _pyramid_inputs(model, images):
    """What :meth:`Mask2Former.forward` feeds its decoder, laid out for transformers (sequence first)."""
    cfg = model.config
    pyramid = dict(zip(model.backbone.strides, model.pixel_decoder(model.backbone(images))))
    memories, positions, sizes = [], [], []
    for i, s in enumerate(cfg.levels):
        f = pyramid[s]
        h, w = f.shape[-2:]
        memories.append((f.flatten(2).transpose(1, 2) + model.level_embed[i]).transpose(0, 1))      # (hw, B, D)
        positions.append(sine_position_encoding(h, w, cfg.dim)[:, None].expand(-1, images.shape[0], -1))
        sizes.append((h, w))
    return pyramid[cfg.mask_stride], memories, positions, sizes


@torch.no_grad()
def test_whole_transformer_decoder_equals_transformers():
    """The course's decoder loop (initial prediction, masks -> attention masks, round-robin levels, per-layer
    heads) against ``Mask2FormerMaskedAttentionDecoder`` with the course model's weights copied in."""
    torch.manual_seed(0)
    layers, d, heads = 4, 32, 4
    model = mask2former(num_classes=4, width=8, dim=d, num_queries=6, num_layers=layers, heads=heads, ffn=64).eval()
    with torch.no_grad():                          # larger mask logits, so the attention masks restrict
        model.mask_embed[4].weight.mul_(8)
    theirs = hf.Mask2FormerMaskedAttentionDecoder(_hf_config(dim=d, heads=heads, layers=layers)).eval()
    for a, b in zip(model.layers, theirs.layers):
        _copy_layer(a, b)
    theirs.layernorm.load_state_dict(model.decoder_norm.state_dict())
    for i, j in enumerate((0, 2, 4)):
        theirs.mask_predictor.mask_embedder.layers[i].layers[0].load_state_dict(model.mask_embed[j].state_dict())
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    out = model(images)
    blocked = torch.stack([bl.float().mean() for bl in model.last_blocked])
    assert (blocked > 0.01).all() and (blocked < 0.9).all(), f"attention masks should restrict, blocked fractions {blocked}"
    mask_features, memories, positions, sizes = _pyramid_inputs(model, images)
    b, q = images.shape[0], model.config.num_queries
    res = theirs(inputs_embeds=model.query_feat.weight[:, None].expand(-1, b, -1), multi_stage_positional_embeddings=positions,
                 pixel_embeddings=mask_features, encoder_hidden_states=memories,
                 query_position_embeddings=model.query_pos.weight[:, None].expand(-1, b, -1), feature_size_list=sizes,
                 return_dict=True)
    assert len(res.masks_queries_logits) == layers + 1
    ours = [*out["aux"], out]
    for i, (hidden, masks) in enumerate(zip(res.intermediate_hidden_states, res.masks_queries_logits)):
        torch.testing.assert_close(ours[i]["mask_logits"], masks, msg=lambda m, i=i: f"prediction {i}: {m}")
        torch.testing.assert_close(ours[i]["class_logits"], model.class_head(hidden.transpose(0, 1)),
                                   msg=lambda m, i=i: f"prediction {i}: {m}")
    assert out["mask_logits"].shape == (b, q, 32, 32)


# ---- the criterion: class / no-object loss, mask losses, auxiliary losses ---------------------------
def _outputs_and_targets(seed, *, b=2, q=7, num_classes=4, sets=3, counts=(3, 2)):
    """Random predictions (``sets - 1`` auxiliary sets) at 16² and targets at 32² (as a model at stride 2)."""
    g = torch.Generator().manual_seed(seed)
    preds = [{"class_logits": torch.randn(b, q, num_classes + 1, generator=g) * 2,
              "mask_logits": torch.randn(b, q, 16, 16, generator=g) * 3} for _ in range(sets)]
    for p in preds:
        for v in p.values():
            v.requires_grad_(True)
    targets = []
    for k in counts:
        labels = torch.randint(0, num_classes, (k,), generator=g)
        masks = (torch.rand(k, 32, 32, generator=g) < 0.35).float()
        targets.append({"labels": labels, "masks": masks})
    outputs = {**preds[-1], "aux": preds[:-1]}
    return outputs, targets


def _hf_loss_dict(loss: hf.Mask2FormerLoss, outputs: dict, targets: list[dict]) -> dict:
    """``Mask2FormerForUniversalSegmentation.get_loss_dict`` (the weighting by ``weight_dict``) on our outputs."""
    model = types.SimpleNamespace(criterion=loss, weight_dict=dict(WEIGHTS))
    aux = [{"masks_queries_logits": a["mask_logits"], "class_queries_logits": a["class_logits"]} for a in outputs["aux"]]
    return hf.Mask2FormerForUniversalSegmentation.get_loss_dict(
        model, outputs["mask_logits"], outputs["class_logits"], [t["masks"] for t in targets],
        [t["labels"] for t in targets], aux or None)


def _leaves(outputs):
    return [t for s in [outputs, *outputs["aux"]] for t in (s["class_logits"], s["mask_logits"])]


@pytest.mark.parametrize("no_object_weight", [0.1, 0.5, 1.0])
def test_class_loss_with_no_object_weight_equals_transformers(no_object_weight):
    outputs, targets = _outputs_and_targets(3, sets=1)
    cl, ml = outputs["class_logits"], outputs["mask_logits"]
    ours = SetCriterion(4, num_points=60, no_object_weight=no_object_weight, aux=False)
    theirs = hf.Mask2FormerLoss(_hf_config(num_points=60, no_object_weight=no_object_weight), dict(WEIGHTS))
    torch.manual_seed(4)
    got = ours.single(cl, ml, targets, num_masks=5.0)["class"]
    torch.manual_seed(4)
    indices = theirs.matcher(ml, cl, [t["masks"] for t in targets], [t["labels"] for t in targets])
    want = theirs.loss_labels(cl, [t["labels"] for t in targets], indices)["loss_cross_entropy"]
    torch.testing.assert_close(got, want)
    g_got, = torch.autograd.grad(got, cl)
    g_want, = torch.autograd.grad(want, cl)
    torch.testing.assert_close(g_got, g_want)
    # the convention both share: a weighted mean, sum(w_i · CE_i) / sum(w_i), "no object" weighing no_object_weight
    target = torch.full((2, 7), 4)
    for i, (src, tgt) in enumerate(indices):
        target[i, src] = targets[i]["labels"][tgt]
    w = torch.where(target == 4, no_object_weight, 1.0)
    ce = F.cross_entropy(cl.detach().transpose(1, 2), target, reduction="none")
    torch.testing.assert_close(got.detach(), (w * ce).sum() / w.sum())


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_criterion_with_auxiliary_losses_equals_transformers(seed):
    """``SetCriterion`` against ``Mask2FormerLoss`` (matcher, class loss, importance-sampled mask losses, one
    matching per auxiliary set) and its weighting: with the same global seed both draw the same random points."""
    outputs, targets = _outputs_and_targets(seed)
    ours = SetCriterion(4, num_points=60)
    theirs = hf.Mask2FormerLoss(_hf_config(num_points=60), dict(WEIGHTS))
    torch.manual_seed(10 + seed)
    got = ours(outputs, targets)
    torch.manual_seed(10 + seed)
    want = _hf_loss_dict(theirs, outputs, targets)
    names = {"class": "loss_cross_entropy", "mask": "loss_mask", "dice": "loss_dice"}
    assert len(want) == 3 * 3 and len(got) == 3 * 3 + 1
    for part, name in names.items():
        weight = WEIGHTS[name]
        torch.testing.assert_close(weight * got[f"loss_{part}"], want[name])
        for i in range(2):
            torch.testing.assert_close(weight * got[f"loss_{part}_aux{i}"], want[f"{name}_{i}"])
    total = sum(want.values())
    torch.testing.assert_close(got["loss"], total)
    leaves = _leaves(outputs)
    for a, b in zip(torch.autograd.grad(got["loss"], leaves), torch.autograd.grad(total, leaves)):
        torch.testing.assert_close(a, b)


def test_criterion_with_an_image_without_targets_differs_only_by_a_random_draw():
    """transformers still draws the matching points (``torch.rand(1, P, 2)``) for an image without targets; the
    course skips the image. With that one draw made by hand, the losses are equal."""
    outputs, targets = _outputs_and_targets(5, sets=1, counts=(0, 3))
    ours = SetCriterion(4, num_points=60, aux=False)
    theirs = hf.Mask2FormerLoss(_hf_config(num_points=60), dict(WEIGHTS))
    torch.manual_seed(6)
    want = _hf_loss_dict(theirs, outputs, targets)
    torch.manual_seed(6)
    torch.rand(1, 60, 2)                            # transformers' points for the empty image
    got = ours(outputs, targets)
    torch.testing.assert_close(got["loss"], sum(want.values()))
    torch.testing.assert_close(2.0 * got["loss_class"], want["loss_cross_entropy"])
    torch.manual_seed(6)
    skipped = ours(outputs, targets)                # without that draw, other points: other mask losses
    assert not torch.allclose(skipped["loss_mask"], got["loss_mask"])


# ---- semantic inference -----------------------------------------------------------------------------
def _hf_outputs(class_logits, mask_logits):
    return types.SimpleNamespace(class_queries_logits=class_logits, masks_queries_logits=mask_logits)


@pytest.mark.parametrize("seed", [0, 1])
def test_semantic_inference_equals_transformers(seed):
    """At transformers' working size (384², where its post-processing resizes the masks) the per-class scores are
    equal; masks given at 48² are resized bilinearly by both."""
    g = torch.Generator().manual_seed(seed)
    cl, ml = torch.randn(2, 6, 5, generator=g) * 2, torch.randn(2, 6, 48, 48, generator=g) * 3
    want = Mask2FormerImageProcessor().post_process_semantic_segmentation(
        _hf_outputs(cl, ml), target_sizes=[(384, 384)] * 2, return_segmentation_scores=True)
    for i in range(2):
        got = semantic_inference(cl[i], ml[i], size=(384, 384))                     # (C, 384, 384)
        torch.testing.assert_close(got, want[i].segmentation_scores)
        assert torch.equal(got.argmax(0), want[i].segmentation)


def test_semantic_inference_at_another_size_differs():
    """The convention named in :func:`semantic_inference`: the course resizes the mask logits to the output size
    before combining them; transformers combines at 384² and resizes the class scores to the target size."""
    g = torch.Generator().manual_seed(2)
    cl, ml = torch.randn(1, 6, 5, generator=g) * 2, torch.randn(1, 6, 16, 16, generator=g) * 3
    want = Mask2FormerImageProcessor().post_process_semantic_segmentation(
        _hf_outputs(cl, ml), target_sizes=[(64, 64)], return_segmentation_scores=True)[0]
    at_384 = semantic_inference(cl[0], ml[0], size=(384, 384))
    resized = F.interpolate(at_384[None], size=(64, 64), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(resized, want.segmentation_scores)
    ours = semantic_inference(cl[0], ml[0], size=(64, 64))
    assert not torch.allclose(ours, want.segmentation_scores, atol=1e-3)
    agree = (ours.argmax(0) == want.segmentation).float().mean()
    assert agree > 0.9, f"the two conventions should agree on most pixels, agree on {agree:.3f}"


# ---- panoptic inference -----------------------------------------------------------------------------
THINGS, STUFF = {3, 4}, {0, 1, 2}


def _hf_panoptic_as_ours(result: dict) -> torch.Tensor:
    """transformers' ``(segment_id map, segments_info)`` as the course's ``(H, W, 2)`` ``(category, instance)``
    map: instance ids 1, 2, ... for things in segment order, 0 for stuff, ``(VOID, 0)`` where the id is 0."""
    seg = result["segmentation"].long()
    out = torch.zeros(*seg.shape, 2, dtype=torch.int64)
    out[..., 0] = VOID
    instance, seen = 0, set()
    for s in result["segments_info"]:
        if s["id"] in seen:                       # a fused stuff segment is listed once per query
            continue
        seen.add(s["id"])
        inst = 0
        if s["label_id"] in THINGS:
            instance += 1
            inst = instance
        out[seg == s["id"]] = torch.tensor([s["label_id"], inst])
    return out


def _saturated_case(seed, q=16, num_classes=5):
    """Random class logits and random rectangular masks with logits ±20, at 384² (no resizing), every pixel
    covered by at least one kept query. Query 0 is a whole-image stuff mask of low score; 1 and the last
    query share stuff class 1 (merged: the merge comes last, as transformers' ids collide after an earlier
    one, see :func:`test_panoptic_segment_ids_after_a_merge_differ`); 2 is stuff class 2; 3 predicts "no
    object"; the others are random rectangles whose random logits favour a thing class or "no object"."""
    g = torch.Generator().manual_seed(seed)
    cl = torch.randn(q, num_classes + 1, generator=g) * 3
    cl[:, :3] -= 10.0                                            # random queries: things or "no object"
    cl[0] = torch.tensor([2.0, 0, 0, 0, 0, 0])                   # stuff class 0, score e²/(e² + 5) = 0.60
    cl[1], cl[q - 1] = torch.tensor([0, 6.0, 0, 0, 0, 0]), torch.tensor([0, 5.0, 0, 0, 0, 0])
    cl[2] = torch.tensor([0, 0, 5.0, 0, 0, 0])
    cl[3, -1] = 9.0
    grid = torch.full((q, 24, 24), -20.0)
    grid[0] = 20.0
    grid[1, :6, :6] = grid[q - 1, 18:, 18:] = grid[2, 18:, :6] = 20.0          # three corners
    for k in range(3, q - 1):
        y, x = torch.randint(0, 20, (2,), generator=g).tolist()
        h, w = torch.randint(4, 12, (2,), generator=g).tolist()
        grid[k, y:y + h, x:x + w] = 20.0
    return cl, grid.repeat_interleave(16, 1).repeat_interleave(16, 2)      # (Q, 384, 384)


@pytest.mark.parametrize("seed", range(6))
def test_panoptic_inference_equals_transformers(seed):
    """Score and no-object filtering, pixel assignment by score × probability, the overlap threshold and stuff
    merging, against ``post_process_panoptic_segmentation``, on inputs where the conventions named in
    :func:`panoptic_inference` coincide (masks of probability 0 or 1 covering the image, at 384²)."""
    cl, ml = _saturated_case(seed)
    want = Mask2FormerImageProcessor().post_process_panoptic_segmentation(
        _hf_outputs(cl[None], ml[None]), threshold=0.5, overlap_mask_area_threshold=0.8, label_ids_to_fuse=STUFF)[0]
    got, segments = panoptic_inference(cl, ml, THINGS, score_threshold=0.5, overlap_threshold=0.8, return_segments=True)
    assert torch.equal(got, _hf_panoptic_as_ours(want))
    ids = sorted({s["id"] for s in want["segments_info"]})
    assert len(segments) == len(ids)
    assert [round(s["score"], 6) for s in segments] == [
        next(t["score"] for t in want["segments_info"] if t["id"] == i) for i in ids]
    # the case exercises each rule: a merged stuff class, a query dropped by the overlap threshold
    scores, labels = cl.softmax(-1).max(-1)
    kept = ((labels != 5) & (scores > 0.5)).sum()
    assert len(want["segments_info"]) > len(ids) and kept > len(want["segments_info"])


def _blocks(rows: list[list[float]]) -> torch.Tensor:
    """A ``(4, 4)`` grid of mask logits blown up to ``(384, 384)`` (96² pixels a cell)."""
    return torch.tensor(rows).repeat_interleave(96, 0).repeat_interleave(96, 1)


def _panoptic_both(cl, ml, **kw):
    want = Mask2FormerImageProcessor().post_process_panoptic_segmentation(
        _hf_outputs(cl[None], ml[None]), label_ids_to_fuse=STUFF, **kw)[0]
    got = panoptic_inference(cl, ml, THINGS, score_threshold=kw["threshold"],
                             overlap_threshold=kw["overlap_mask_area_threshold"])
    return got, _hf_panoptic_as_ours(want), want


def test_panoptic_own_mask_area_differs():
    """transformers measures a query's own mask on score-weighted probabilities (``mask_probs *= pred_scores``
    runs before ``check_segment_validity``): a query of score 0.6 whose mask probability is 0.7 has no own
    pixels there (0.42 < 0.5) and gives no segment. The course (and the original code) thresholds the
    probability itself."""
    score = 0.6
    cl = torch.tensor([[0.0, 0.0, 0.0, torch.log(torch.tensor(score * 5 / (1 - score))), 0.0, 0.0]])   # thing 3
    p = torch.log(torch.tensor(0.7 / 0.3))
    ml = _blocks([[p, p, -20.0, -20.0]] * 4)[None]
    got, theirs, want = _panoptic_both(cl, ml, threshold=0.5, overlap_mask_area_threshold=0.8)
    assert want["segments_info"] == [] and (theirs[..., 0] == VOID).all()
    assert (got[:, :192] == torch.tensor([3, 1])).all() and (got[:, 192:, 0] == VOID).all()


def test_panoptic_segment_pixels_differ():
    """A segment is the pixels its query wins *inside its own mask* (the original code); transformers gives
    it every pixel it wins, so pixels that no mask covers join the highest-scoring query."""
    cl = torch.tensor([[0.0, 0.0, 0.0, 0.0, 6.0, 0.0]])                     # thing 4, score 0.96
    ml = _blocks([[20.0, 20.0, -20.0, -20.0]] * 4)[None]
    got, theirs, _ = _panoptic_both(cl, ml, threshold=0.5, overlap_mask_area_threshold=0.8)
    assert (theirs == torch.tensor([4, 1])).all()
    assert (got[:, :192] == torch.tensor([4, 1])).all() and (got[:, 192:, 0] == VOID).all()


def test_panoptic_overlap_ratio_at_the_threshold_differs():
    """A query that keeps exactly ``overlap_threshold`` of its mask is kept by the course (the original code
    drops it when the ratio is ``<`` the threshold), dropped by transformers (kept only when ``>``)."""
    cl = torch.tensor([[0.0, 0.0, 0.0, 6.0, 0.0, 0.0],                     # thing 3, score 0.96: one cell
                       [0.0, 0.0, 0.0, 0.0, 3.0, 0.0]])                    # thing 4, score 0.80: four cells
    ml = torch.stack([_blocks([[20.0, -20, -20, -20]] + [[-20.0] * 4] * 3),
                      _blocks([[20.0, 20, 20, 20]] + [[-20.0] * 4] * 3)])   # query 1 wins 3 of its 4 cells
    got, theirs, _ = _panoptic_both(cl, ml, threshold=0.5, overlap_mask_area_threshold=0.75)
    assert (got[:96, 96:] == torch.tensor([4, 2])).all()
    assert (theirs[:96, 96:, 0] != 4).all()


def test_panoptic_segment_ids_after_a_merge_differ():
    """After merging a query into an earlier stuff segment, transformers' ``compute_segments`` sets
    ``current_segment_id`` back to that segment's id, so the next new segment reuses an id already given:
    two segments become one. The course (and the original code) numbers segments apart."""
    cl = torch.tensor([[6.0, 0, 0, 0, 0, 0],                               # stuff 0, row 0
                       [0, 6.0, 0, 0, 0, 0],                               # stuff 1, row 1
                       [6.0, 0, 0, 0, 0, 0],                               # stuff 0 again, row 2: merged
                       [0, 0, 0, 6.0, 0, 0]])                              # thing 3, row 3
    rows = torch.eye(4) * 40 - 20                                          # query k covers row k
    ml = torch.stack([_blocks([[float(r)] * 4 for r in rows[k]]) for k in range(4)])
    got, _, want = _panoptic_both(cl, ml, threshold=0.5, overlap_mask_area_threshold=0.8)
    ids = want["segmentation"][::96, 0].tolist()                           # one pixel per row
    assert ids[0] == ids[2] and ids[1] == ids[3]                           # the stuff 1 and thing 3 share an id
    assert [s["label_id"] for s in want["segments_info"] if s["id"] == ids[1]] == [1, 3]
    assert got[::96, 0].tolist() == [[0, 0], [1, 0], [0, 0], [3, 1]]
