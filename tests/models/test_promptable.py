"""The promptable segmenter's pieces against Segment Anything's own modules (``segment_anything.modeling``,
the reference implementation of SAM), with copied weights, on seeded random inputs; then the whole
model's shapes, the embed/decode split and a backward pass."""

from __future__ import annotations

import pytest
import torch
from segment_anything.modeling import prompt_encoder as sam_pe
from segment_anything.modeling import transformer as sam_tf
from segment_anything.modeling.mask_decoder import MaskDecoder as SamMaskDecoder

from segcourse.models.promptable import (
    Attention,
    MaskDecoder,
    PositionEmbeddingRandom,
    PromptEncoder,
    TwoWayAttentionBlock,
    TwoWayTransformer,
    pick_mask,
    promptable_segmenter,
)


def _copy(ours: torch.nn.Module, reference: torch.nn.Module, *, allowed_unexpected: str | None = None) -> None:
    """Load the reference's weights into ours by name; every one of our keys must be filled."""
    result = ours.load_state_dict(reference.state_dict(), strict=False)
    assert result.missing_keys == [], f"our keys that SAM lacks: {result.missing_keys}"
    extra = [k for k in result.unexpected_keys if not (allowed_unexpected and k.startswith(allowed_unexpected))]
    assert extra == [], f"SAM keys we do not have: {extra}"


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights everywhere (SAM initialises LayerNorms to 1/0 and embeddings identically)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.mark.parametrize("size", [(16, 16), (7, 12)])
def test_positional_encoding_equals_sam_on_grids_and_points(size):
    torch.manual_seed(0)
    ref = sam_pe.PositionEmbeddingRandom(24)
    ours = PositionEmbeddingRandom(24)
    _copy(ours, ref)
    torch.testing.assert_close(ours(size), ref(size))
    coords = torch.rand(3, 5, 2) * torch.tensor([size[1], size[0]])
    torch.testing.assert_close(ours.forward_with_coords(coords, size), ref.forward_with_coords(coords, size))


def test_positional_encoding_is_sine_and_cosine_of_the_projected_position():
    pe = PositionEmbeddingRandom(4, generator=torch.Generator().manual_seed(1))
    code = pe((1, 1))[:, 0, 0]                     # the one cell's centre is (0.5, 0.5) -> 0 in [-1, 1]
    torch.testing.assert_close(code, torch.tensor([0.0, 0, 0, 0, 1, 1, 1, 1]))   # sin 0 = 0, cos 0 = 1


@pytest.mark.parametrize("kind", ["points", "points+box", "box"])
def test_prompt_embeddings_equal_sam(kind):
    torch.manual_seed(1)
    ref = sam_pe.PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(32, 32), mask_in_chans=16)
    _randomise(ref, 2)
    ours = PromptEncoder(32, (8, 8), (32, 32))
    _copy(ours, ref, allowed_unexpected="mask_downscaling.")
    g = torch.Generator().manual_seed(3)
    points = (torch.rand(2, 4, 2, generator=g) * 32, torch.tensor([[1, 0, 1, -1], [0, 1, -1, -1]]))
    boxes = torch.tensor([[2.0, 3, 20, 25], [0, 0, 31, 31]])
    args = {"points": (points, None), "points+box": (points, boxes), "box": (None, boxes)}[kind]
    sparse, dense = ours(*args)
    ref_sparse, ref_dense = ref(*args, masks=None)
    torch.testing.assert_close(sparse, ref_sparse)
    torch.testing.assert_close(dense, ref_dense)
    torch.testing.assert_close(ours.get_dense_pe(), ref.get_dense_pe())


def test_attention_with_downsampling_equals_sam():
    torch.manual_seed(4)
    ref = sam_tf.Attention(32, 4, downsample_rate=2)
    ours = Attention(32, 4, downsample_rate=2)
    _copy(ours, ref)
    q, k = torch.randn(2, 5, 32), torch.randn(2, 30, 32)
    torch.testing.assert_close(ours(q, k, k), ref(q, k, k))


@pytest.mark.parametrize("skip_first_layer_pe", [True, False])
def test_two_way_attention_block_equals_sam(skip_first_layer_pe):
    torch.manual_seed(5)
    ref = sam_tf.TwoWayAttentionBlock(32, 4, mlp_dim=64, skip_first_layer_pe=skip_first_layer_pe)
    _randomise(ref, 6)
    ours = TwoWayAttentionBlock(32, 4, mlp_dim=64, skip_first_layer_pe=skip_first_layer_pe)
    _copy(ours, ref)
    g = torch.Generator().manual_seed(7)
    queries, keys = torch.randn(2, 6, 32, generator=g), torch.randn(2, 20, 32, generator=g)
    qpe, kpe = torch.randn(2, 6, 32, generator=g), torch.randn(2, 20, 32, generator=g)
    for a, b in zip(ours(queries, keys, qpe, kpe), ref(queries=queries, keys=keys, query_pe=qpe, key_pe=kpe)):
        torch.testing.assert_close(a, b)


def test_two_way_transformer_equals_sam():
    torch.manual_seed(8)
    ref = sam_tf.TwoWayTransformer(depth=2, embedding_dim=32, num_heads=4, mlp_dim=64)
    _randomise(ref, 9)
    ours = TwoWayTransformer(2, 32, 4, 64)
    _copy(ours, ref)
    g = torch.Generator().manual_seed(10)
    image, pe, tokens = torch.randn(2, 32, 5, 6, generator=g), torch.randn(2, 32, 5, 6, generator=g), torch.randn(2, 7, 32, generator=g)
    for a, b in zip(ours(image, pe, tokens), ref(image, pe, tokens)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("multimask", [True, False])
def test_mask_decoder_outputs_equal_sam(multimask):
    torch.manual_seed(11)
    ref = SamMaskDecoder(transformer_dim=32, transformer=sam_tf.TwoWayTransformer(depth=2, embedding_dim=32, num_heads=4, mlp_dim=64),
                         num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=16)
    _randomise(ref, 12)
    ours = MaskDecoder(transformer_dim=32, transformer=TwoWayTransformer(2, 32, 4, 64), num_multimask_outputs=3, iou_head_hidden_dim=16)
    _copy(ours, ref)
    g = torch.Generator().manual_seed(13)
    # SAM decodes B prompt sets of one image (its embedding is repeated per prompt set): batch 1 image
    image, pe = torch.randn(1, 32, 6, 6, generator=g), torch.randn(1, 32, 6, 6, generator=g)
    sparse, dense = torch.randn(3, 4, 32, generator=g), torch.randn(3, 32, 6, 6, generator=g)
    masks, iou = ours(image, pe, sparse, dense, multimask_output=multimask)
    ref_masks, ref_iou = ref(image, pe, sparse, dense, multimask_output=multimask)
    assert masks.shape == (3, 3 if multimask else 1, 24, 24)
    torch.testing.assert_close(masks, ref_masks, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(iou, ref_iou, rtol=1e-4, atol=1e-4)


def test_mask_decoder_pairs_a_batch_of_embeddings_with_a_batch_of_prompts():
    torch.manual_seed(14)
    dec = MaskDecoder(transformer_dim=32, transformer=TwoWayTransformer(1, 32, 4, 64), iou_head_hidden_dim=16).eval()
    image, pe = torch.randn(2, 32, 4, 4), torch.randn(1, 32, 4, 4)
    sparse, dense = torch.randn(2, 3, 32), torch.randn(2, 32, 4, 4)
    both, _ = dec(image, pe, sparse, dense, multimask_output=True)
    second, _ = dec(image[1:], pe, sparse[1:], dense[1:], multimask_output=True)
    torch.testing.assert_close(both[1:], second)
    with pytest.raises(ValueError, match="batch"):
        dec(torch.randn(3, 32, 4, 4), pe, sparse, dense, multimask_output=True)


@pytest.mark.parametrize("size", [(64, 64), (48, 76)])
def test_model_shapes_split_and_backward(size):
    torch.manual_seed(15)
    model = promptable_segmenter()
    n = sum(p.numel() for p in model.parameters())
    assert 0.1e6 < n < 0.5e6, n
    images = torch.rand(2, 3, *size)
    points = torch.tensor([[[10.0, 12.0]], [[30.0, 5.0]]])
    labels = torch.ones(2, 1, dtype=torch.int64)
    masks, iou = model(images, points, labels)
    assert masks.shape == (2, 3, *size) and iou.shape == (2, 3)
    (masks.mean() + iou.mean()).backward()
    model.eval()
    with torch.no_grad():
        emb = model.embed(images)
        once = model.decode(emb, points, labels)
        again = model(images, points, labels)
    torch.testing.assert_close(once[0], again[0])
    single, _ = model.decode(emb, points, labels, multimask=False)
    assert single.shape == (2, 1, *size)
    picked, best = pick_mask(*once)
    assert picked.shape == (2, *size) and best.tolist() == once[1].argmax(1).tolist()


def test_click_maps_by_hand():
    model = promptable_segmenter(click_radius=1.0)
    points = torch.tensor([[[2.0, 1.0], [0.0, 0.0], [3.0, 3.0]]])          # (x, y): two positive, one negative
    labels = torch.tensor([[1, 1, 0]])
    maps = model.click_maps(points, labels, (4, 4))
    assert maps.shape == (1, 2, 4, 4)
    assert maps[0, 0, 1, 2] == 1 and maps[0, 0, 0, 0] == 1 and maps[0, 1, 3, 3] == 1
    # pixel (row 1, col 1): 1 px from (x=2, y=1) and sqrt(2) px from (0, 0): the nearer bump, exp(-1/2)
    torch.testing.assert_close(maps[0, 0, 1, 1], torch.exp(torch.tensor(-0.5)))
    assert maps[0, 1, 0, 0] < 1e-3                                          # the negative map is far from (0, 0)


def test_without_click_maps_the_model_is_sams_point_prompt_only():
    model = promptable_segmenter(click_maps=False)
    assert not hasattr(model, "click_downscaling")
    masks, _ = model(torch.rand(1, 3, 32, 32), torch.tensor([[[5.0, 5.0]]]), torch.ones(1, 1, dtype=torch.int64))
    assert masks.shape == (1, 3, 32, 32)


def test_model_rejects_sizes_not_divisible_by_the_stride():
    with pytest.raises(ValueError, match="divisible by 4"):
        promptable_segmenter().embed(torch.rand(1, 3, 30, 32))


def test_mask_feedback_takes_the_previous_mask_as_a_third_dense_channel():
    torch.manual_seed(16)
    model = promptable_segmenter(mask_feedback=True).eval()
    assert model.click_downscaling[0].in_channels == 3
    images = torch.rand(1, 3, 32, 32)
    points, labels = torch.tensor([[[5.0, 5.0], [20.0, 20.0]]]), torch.tensor([[1, 0]])
    with torch.no_grad():
        emb = model.embed(images)
        none, _ = model.decode(emb, points, labels, multimask=False)
        zeros, _ = model.decode(emb, points, labels, multimask=False, mask_input=torch.zeros(1, 1, 32, 32))
        ones, _ = model.decode(emb, points, labels, multimask=False, mask_input=torch.ones(1, 1, 32, 32))
    torch.testing.assert_close(none, zeros)                 # no previous mask = an empty one
    assert not torch.allclose(zeros, ones)


def test_the_embedding_packs_the_refiners_full_resolution_features_by_pixel_unshuffle():
    torch.manual_seed(17)
    model = promptable_segmenter().eval()
    d, width = model.config.embed_dim, model.config.refine_width
    images = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        emb = model.embed(images)
        hires = model.refiner.features((images - model.image_encoder.mean) / model.image_encoder.std)
    assert emb.shape == (2, model.embedding_channels, 8, 10) and model.embedding_channels == d + width * 16 == 192
    torch.testing.assert_close(emb[:, :d], model.image_encoder(images))
    torch.testing.assert_close(torch.nn.functional.pixel_shuffle(emb[:, d:], 4), hires)


def test_an_untrained_refiner_returns_the_decoders_masks_and_a_trained_one_sees_the_clicks():
    torch.manual_seed(18)
    model = promptable_segmenter().eval()
    images = torch.rand(1, 3, 32, 32)
    points, labels = torch.tensor([[[8.0, 9.0], [20.0, 22.0]]]), torch.tensor([[1, 0]])
    with torch.no_grad():
        emb = model.embed(images)
        refined, iou = model.decode(emb, points, labels, multimask=False)
        refiner, model.refiner = model.refiner, None                 # the same weights without the refiner
        plain, plain_iou = model.decode(emb[:, :model.config.embed_dim], points, labels, multimask=False)
        model.refiner = refiner
    torch.testing.assert_close(refined, plain)                        # its last convolution starts at zero
    torch.testing.assert_close(iou, plain_iou)
    torch.nn.init.normal_(model.refiner.head[-1].weight, std=0.5)
    with torch.no_grad():
        moved, _ = model.decode(emb, points, labels, multimask=False)
        other, _ = model.decode(emb, points + torch.tensor([[[3.0, 0.0], [0.0, 0.0]]]), labels, multimask=False)
    assert not torch.allclose(moved, plain) and not torch.allclose(moved, other)


def test_decode_names_the_embedding_shape_it_expects():
    model = promptable_segmenter()
    with pytest.raises(ValueError, match=r"embedding must be float \(B, 192, h, w\).*got \(1, 64, 8, 8\)"):
        model.decode(torch.zeros(1, 64, 8, 8), torch.tensor([[[4.0, 4.0]]]), torch.ones(1, 1, dtype=torch.int64))
    assert promptable_segmenter(refine_width=0).embedding_channels == 64
