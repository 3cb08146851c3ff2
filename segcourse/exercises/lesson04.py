"""Checks for lesson 04 (U-Net): sizes through the U, padding instead of cropping, masks
that keep their labels and their alignment, and counting the network's parameters by hand.

Each check compares the learner's answer with the course's own implementation
(:mod:`segcourse.models.unet`) on hidden cases, and says which case failed and why.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import CheckFailed, case, exercise, expect_callable, expect_equal, expect_tensor

# ------------------------------------------------------------------------------------------
# 4.1 -- predict the sizes through a depth-5 U for a 123 x 201 image
# ------------------------------------------------------------------------------------------


def _pooled(n: int, depth: int) -> int:
    for _ in range(depth):
        n //= 2  # max-pool 2x2 rounds down
    return n


def _as_pair(value, what: str) -> tuple[int, int]:
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what}: expected a pair (height, width) of ints, got {value!r}") from None
    if len(pair) != 2:
        raise CheckFailed(f"{what}: expected a pair (height, width), got {len(pair)} values: {value!r}")
    return pair  # type: ignore[return-value]


@exercise("4.1", title="Predict the sizes through the U", level="warm-up", minutes=5, kind="predict",
          goal="See that max-pooling rounds down, so x2 upsampling cannot give an odd size back, and how "
               "much a cropping U-Net silently loses.",
          hint="Halve and round down five times (123 -> 61 -> ...), then double five times. When the skip is "
               "cropped to the upsampled map at every level, the output is the bottleneck size times 2**5 = 32.")
def check_sizes(prediction):
    if not isinstance(prediction, dict):
        raise CheckFailed(f"expected a dict with keys 'bottleneck' and 'cropped_output', got {type(prediction).__name__}")
    missing = {"bottleneck", "cropped_output"} - set(prediction)
    if missing:
        raise CheckFailed(f"the dict is missing the key(s) {sorted(missing)}")
    if all(v is None for v in prediction.values()):
        raise NotImplementedError("not attempted")
    h, w, depth = 123, 201, 5
    bottleneck = (_pooled(h, depth), _pooled(w, depth))  # 123 -> 61 -> 30 -> 15 -> 7 -> 3, 201 -> ... -> 6
    got = _as_pair(prediction["bottleneck"], "bottleneck")
    if got != bottleneck:
        raise CheckFailed(f"bottleneck: expected {bottleneck}, got {got} -- remember that max-pooling rounds down: 123 // 2 = 61")
    cropped = (bottleneck[0] * 2**depth, bottleneck[1] * 2**depth)  # (96, 192): 27 rows and 9 columns lost
    got = _as_pair(prediction["cropped_output"], "cropped_output")
    if got != cropped:
        raise CheckFailed(f"cropped_output: expected {cropped}, got {got} -- a cropping U-Net can only ever "
                          f"double the bottleneck, whatever the skips' sizes were")


# ------------------------------------------------------------------------------------------
# 4.2 -- pad the upsampled map to the skip's size and concatenate (no cropping)
# ------------------------------------------------------------------------------------------


def _reference_pad_and_concat(up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    dh, dw = skip.shape[-2] - up.shape[-2], skip.shape[-1] - up.shape[-1]
    up = F.pad(up, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
    return torch.cat([skip, up], dim=1)


def _concat_cases():
    g = torch.Generator().manual_seed(404)
    # (name, up size, skip size): every difference a U-Net meets (0 or 1 per side) and one larger one
    for name, (uh, uw), (sh, sw) in [
        ("same size (even input)", (8, 8), (8, 8)),
        ("one row short (odd height)", (12, 8), (13, 8)),
        ("one column short (odd width)", (6, 36), (6, 37)),
        ("both short (97 x 75 at full resolution)", (96, 74), (97, 75)),
        ("three columns short (split 1 left, 2 right)", (5, 4), (6, 7)),
    ]:
        up = torch.randn(2, 3, uh, uw, generator=g)
        skip = torch.randn(2, 4, sh, sw, generator=g)
        yield name, up, skip


@exercise("4.2", title="Pad, do not crop: the odd-size skip concatenation", level="core", minutes=15,
          kind="implement",
          goal="Write the one line that makes a U-Net work on any input size: align the upsampled map to the "
               "skip by zero-padding it (never cropping the skip), then concatenate [skip, upsampled].",
          hint="Pad, never crop: the skip has H - h more rows than up; the top gets half of them, rounded down, "
               "and the bottom the rest (columns likewise). F.pad lists the last dimension first. Then "
               "concatenate along the channels, skip first.")
def check_pad_and_concat(candidate):
    expect_callable(candidate, "pad_and_concat(up, skip)")
    _check_concat_cases(candidate)
    with case("inside a depth-3 U-Net on a 29 x 21 image"):
        _check_in_a_unet(candidate)


def _check_in_a_unet(candidate):
    from ..models.unet import unet

    torch.manual_seed(0)
    model = unet(depth=3, base_channels=2).eval()
    x = torch.randn(1, 3, 29, 21)  # 29 -> 14 -> 7 -> 3 and 21 -> 10 -> 5 -> 2: an odd skip at every level
    with torch.no_grad():
        features = model.encoder(x)
        y = features[-1]
        for block, skip in zip(model.decoder.blocks, reversed(features[:-1])):
            y = block.conv(candidate(block.up(y), skip))
        got, want = model.head(y), model(x)
    if tuple(got.shape) != tuple(want.shape) or not torch.allclose(got, want, atol=1e-5):
        raise CheckFailed("with your function in the decoder the U-Net's output differs from unet(...)'s on "
                          "an odd-size image")


def _check_concat_cases(candidate):
    for name, up, skip in _concat_cases():
        with case(name):
            got = candidate(up.clone(), skip.clone())
            want = _reference_pad_and_concat(up, skip)
            expect_tensor(got)
            if tuple(got.shape) != tuple(want.shape):
                hint = ""
                if got.shape[-2:] != skip.shape[-2:]:
                    hint = (f" -- the result must have the skip's size {tuple(skip.shape[-2:])} "
                            f"(was something cropped?)")
                raise CheckFailed(f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}{hint}")
            swapped = torch.cat([want[:, skip.shape[1]:], skip], dim=1)  # [upsampled, skip]
            if torch.equal(got, swapped):
                raise CheckFailed("the channels are in the wrong order: concatenate [skip, upsampled], skip first")
            if not torch.equal(got[:, : skip.shape[1]], skip):
                raise CheckFailed("the first channels should be the skip, unchanged (concatenate [skip, upsampled])")
            if not torch.equal(got, want):
                padded = got[:, skip.shape[1]:]
                if torch.count_nonzero(padded) != torch.count_nonzero(up):
                    raise CheckFailed("the upsampled map was changed, not only padded: pad with zeros "
                                      "(F.pad's default), do not interpolate or replicate")
                raise CheckFailed("the upsampled map is padded on the wrong side: split the difference, "
                                  "the extra pixel of an odd difference going to the bottom/right")


# ------------------------------------------------------------------------------------------
# 4.3 -- resize a mask without inventing labels
# ------------------------------------------------------------------------------------------


def _mask_cases():
    g = torch.Generator().manual_seed(4043)
    square = torch.zeros(1, 12, 12, dtype=torch.int64)
    square[:, 3:9, 3:9] = 2  # class 2 on class 0: bilinear invents 1s along the border
    blocks = torch.zeros(1, 12, 12, dtype=torch.int64)
    blocks[:, :, 4:8] = 1
    blocks[:, :, 8:] = 2
    two = torch.zeros(2, 10, 14, dtype=torch.int64)
    two[0, 2:7, 3:9] = 2
    two[1, 5:, :6] = 1
    ignored = torch.randint(0, 3, (1, 9, 7), generator=g)
    ignored[:, :3] = 255  # the ignore label must survive resizing too
    yield "a class-2 square on background, up to 20 x 20", square, (20, 20)
    yield "three classes side by side, up to 20 x 20", blocks, (20, 20)
    yield "two masks, down to 5 x 7", two, (5, 7)
    yield "random labels with an ignored band, up to 18 x 14", ignored, (18, 14)
    yield "odd size 13 x 11 from 12 x 12", blocks, (13, 11)
    stripes = (torch.arange(9)[None, None, :] % 3 == 1).long().expand(1, 9, 9).clone()  # class 1 on columns 1, 4, 7
    yield "stripes at the centre of every 3-column block, down to 3 x 3", stripes, (3, 3)


@exercise("4.3", title="Resize a mask without inventing labels", level="core", minutes=15, kind="break-it",
          goal="See why masks are resized with nearest-neighbour interpolation (never bilinear) and stay integer "
               "class ids (never divided by 255), then write the resize that keeps every label and stays aligned "
               "with the image.",
          hint="Masks hold class ids, not intensities: copy the id of one source pixel, never mix ids (no "
               "bilinear, no /255). Of F.interpolate's two nearest modes, 'nearest-exact' takes the pixel under each "
               "output pixel's centre, as bilinear (align_corners=False) does; legacy 'nearest' is shifted.")
def check_resize_mask(candidate):
    expect_callable(candidate, "resize_mask(mask, size)")
    for name, mask, size in _mask_cases():
        with case(name):
            got = candidate(mask.clone(), size)
            expect_tensor(got)
            want_shape = (mask.shape[0], *size)
            if tuple(got.shape) != want_shape:
                raise CheckFailed(f"expected shape {want_shape} (N, H, W), got {tuple(got.shape)}")
            if got.dtype != torch.int64:
                raise CheckFailed(f"expected int64 class ids (what cross-entropy wants), got {got.dtype}")
            invented = sorted(set(got.unique().tolist()) - set(mask.unique().tolist()))
            if invented:
                raise CheckFailed(f"the resized mask holds label(s) {invented} that are not in the input "
                                  f"{sorted(mask.unique().tolist())}: interpolation invented classes")
            nearest = F.interpolate(mask[:, None].float(), size=size, mode="nearest")[:, 0].long()
            exact = F.interpolate(mask[:, None].float(), size=size, mode="nearest-exact")[:, 0].long()
            if exact.any() and not got.any():
                raise CheckFailed("every pixel came out as class 0: was the mask divided by 255 (or cast to uint8 "
                                  "after a float operation)? Class ids must stay 0, 1, 2, ...")
            if torch.equal(got, nearest) and not torch.equal(got, exact):
                raise CheckFailed("the labels are right but the mask is shifted: legacy mode='nearest' takes the "
                                  "source pixel at floor(i * in / out), from each output pixel's top-left corner, "
                                  "while a bilinearly resized image (align_corners=False) samples at pixel centres; "
                                  "use the centre-aligned nearest mode")
            expect_equal(got, exact, "resized mask (compared with mode='nearest-exact')")


# ------------------------------------------------------------------------------------------
# 4.4 -- count the U-Net's parameters by hand
# ------------------------------------------------------------------------------------------


def _unet_count(in_channels: int, num_classes: int, depth: int, base_channels: int, up: str) -> int:
    from ..models import count_parameters, unet

    return count_parameters(unet(in_channels=in_channels, num_classes=num_classes, depth=depth,
                                 base_channels=base_channels, up=up, norm="batch"))


@exercise("4.4", title="Count the U-Net's parameters by hand", level="stretch", minutes=20, kind="implement",
          goal="Know where a U-Net's weights are (the deepest stages hold most of them) by writing its "
               "parameter count as a formula.",
          hint="DoubleConv(a, b) with BatchNorm = 9ab + 9b^2 + 4b (no conv bias). Stage i has c_i = base * 2**i "
               "channels. Each decoder block: up-sampler (transpose: 4 * a * a/2 + a/2; bilinear + 1x1: "
               "a * a/2 + a/2 with a = c_i) then DoubleConv(c_i, c_{i-1}). Head: c_0 * classes + classes.")
def check_parameter_count(candidate):
    expect_callable(candidate, "unet_parameter_count(...)")
    for config in [
        dict(in_channels=1, num_classes=2, depth=1, base_channels=2, up="transpose"),
        dict(in_channels=3, num_classes=2, depth=4, base_channels=32, up="transpose"),
        dict(in_channels=3, num_classes=5, depth=3, base_channels=16, up="bilinear"),
        dict(in_channels=1, num_classes=1, depth=5, base_channels=8, up="bilinear"),
    ]:
        with case(", ".join(f"{k}={v}" for k, v in config.items())):
            got = candidate(**config)
            want = _unet_count(**config)
            try:
                got_int = int(got)
            except (TypeError, ValueError):
                raise CheckFailed(f"expected an int, got {type(got).__name__} ({got!r})") from None
            if got_int != want:
                raise CheckFailed(f"expected {want:,} parameters, got {got_int:,} (off by {got_int - want:+,})")
