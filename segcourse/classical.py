"""Classical segmentation: thresholds, morphology, connected components, region growing, watershed.

Lesson 01 builds these by hand and then uses them; the deep lessons use them as the
baseline a network has to beat (:func:`watershed_labels` is lesson 01's whole instance pipeline, which
lesson 08 compares with Mask R-CNN). Every function takes and returns NumPy arrays:

* ``image``: ``(H, W)`` ``uint8`` grey levels (colour images: convert first, e.g.
  ``skimage.color.rgb2gray``, then :func:`to_uint8`);
* ``mask``: ``(H, W)`` ``bool``, ``True`` = foreground;
* ``labels``: ``(H, W)`` ``int32`` instance label map, ``0`` = background, objects ``1..n``.

Conventions (those of scikit-image): a threshold ``t`` makes ``image > t`` the
foreground, so ``t`` is the last grey level of the background class.

References:
    * N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. SMC 9(1), 1979.
      https://doi.org/10.1109/TSMC.1979.4310076
    * R. Adams, L. Bischof, "Seeded region growing", IEEE TPAMI 16(6), 1994.
      https://doi.org/10.1109/34.295913
    * L. Vincent, P. Soille, "Watersheds in digital spaces", IEEE TPAMI 13(6), 1991.
      https://doi.org/10.1109/34.87344
    * J. Sauvola, M. Pietikäinen, "Adaptive document image binarization", Pattern Recognition 33(2), 2000
      (local thresholds). https://doi.org/10.1016/S0031-3203(99)00055-2
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import numpy as np

from ._checks import as_binary_mask, check_int

__all__ = [
    "adaptive_threshold", "between_class_variance", "close_mask", "connected_components", "fill_holes",
    "gaussian_blur", "global_threshold", "histogram", "open_mask", "otsu_threshold", "region_grow",
    "remove_small", "to_uint8", "watershed_distance", "flood_fill", "flood_from_clicks", "watershed_instances", "watershed_labels",
]


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------

def _check_image(image, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of shape (H, W), got {type(image).__name__}")
    if image.ndim != 2:
        raise ValueError(f"{name} must be a grey-level image of shape (H, W), got shape {image.shape}; "
                         f"convert colour images first (e.g. skimage.color.rgb2gray, then to_uint8)")
    if image.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8 (grey levels 0..255), got {image.dtype}; use to_uint8(image)")
    return image


def to_uint8(image) -> np.ndarray:
    """Rescale any real-valued ``(H, W)`` array linearly to ``uint8`` 0..255 (min -> 0, max -> 255).

    A ``uint8`` input is returned unchanged; a constant image becomes all zeros. (The synthetic
    generators' ``unit_float_to_uint8`` is the other conversion: ``[0, 1]`` times 255, not stretched.)
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if image.ndim != 2:
        raise ValueError(f"expected a grey-level image of shape (H, W), got shape {image.shape}")
    image = image.astype(np.float64)
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros(image.shape, np.uint8)
    return np.round((image - lo) / (hi - lo) * 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# thresholds
# ----------------------------------------------------------------------------------------------

def histogram(image: np.ndarray) -> np.ndarray:
    """Grey-level histogram: ``counts[g]`` = number of pixels with value ``g``.

    Args:
        image: ``(H, W)`` uint8.

    Returns:
        ``(256,)`` int64 counts.
    """
    return np.bincount(_check_image(image).ravel(), minlength=256)


def global_threshold(image: np.ndarray, threshold: float) -> np.ndarray:
    """Foreground where ``image > threshold``.

    Args:
        image: ``(H, W)`` uint8.
        threshold: a grey level (the last background level).

    Returns:
        ``(H, W)`` bool mask.
    """
    return _check_image(image) > threshold


def between_class_variance(image: np.ndarray) -> np.ndarray:
    """Otsu's criterion for every threshold at once: ``w0(t) * w1(t) * (m0(t) - m1(t))**2``.

    Class 0 holds the grey levels ``<= t`` (pixel count ``w0``, mean level ``m0``), class 1 those
    ``> t`` (``w1``, ``m1``). Cumulative sums of the histogram give all 256 values in one pass.
    The criterion is in units of pixels² × grey levels² (not divided by the pixel count, so only
    its argmax matters).

    Args:
        image: ``(H, W)`` uint8.

    Returns:
        ``(256,)`` float64; ``-1.0`` where one class is empty (no valid split at that ``t``).
    """
    hist = histogram(image).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    nonzero = np.flatnonzero(hist)
    w0 = np.cumsum(hist)                        # pixels <= t
    w1 = w0[-1] - w0                            # pixels > t
    s0 = np.cumsum(hist * levels)
    s1 = s0[-1] - s0
    with np.errstate(divide="ignore", invalid="ignore"):
        m0 = s0 / w0
        m1 = s1 / w1
        between = w0 * w1 * (m0 - m1) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    between[: nonzero[0]] = -1.0               # below the darkest pixel: one class is empty
    between[nonzero[-1]:] = -1.0               # at or above the brightest: the foreground is empty
    return between


def otsu_threshold(image: np.ndarray) -> int:
    """Otsu's threshold, computed from the grey-level histogram.

    For each candidate ``t`` the pixels split into background ``<= t`` (weight ``w0``,
    mean ``m0``) and foreground ``> t`` (``w1``, ``m1``); Otsu picks the ``t`` that maximises
    the between-class variance ``w0 * w1 * (m0 - m1)**2`` (:func:`between_class_variance`;
    equivalently, minimises the within-class variance). Ties go to the smallest ``t``.

    Matches ``skimage.filters.threshold_otsu`` on uint8 images (same convention:
    foreground is ``image > t``).

    Args:
        image: ``(H, W)`` uint8.

    Returns:
        ``t``, an int in ``0..254``; a constant image returns its value.

    References:
        N. Otsu, IEEE Trans. SMC 9(1), 1979. https://doi.org/10.1109/TSMC.1979.4310076
    """
    nonzero = np.flatnonzero(histogram(image))
    if len(nonzero) == 1:
        return int(nonzero[0])
    return int(np.argmax(between_class_variance(image)))


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of a grey image, kept in uint8 grey levels (rounded, not rescaled).

    Averaging each pixel with its neighbours (weights ``exp(-d² / 2 sigma²)``) lowers pixel noise
    by roughly ``1 / (2 sqrt(pi) sigma)`` while blurring edges by about ``sigma`` pixels: done before
    a threshold, it removes most of the speckle a noisy image would give. Wraps
    ``scipy.ndimage.gaussian_filter`` (edges reflected).

    Args:
        image: ``(H, W)`` uint8.
        sigma: standard deviation in pixels (>= 0; 0 returns a copy).

    Returns:
        ``(H, W)`` uint8.
    """
    from scipy import ndimage

    image = _check_image(image)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) or not sigma >= 0:
        raise ValueError(f"sigma must be a non-negative number of pixels, got {sigma!r}")
    if sigma == 0:
        return image.copy()
    smooth = ndimage.gaussian_filter(image.astype(np.float64), float(sigma), mode="reflect")
    return np.clip(np.round(smooth), 0, 255).astype(np.uint8)


def adaptive_threshold(image: np.ndarray, block_size: int = 51, offset: float = 0.0,
                       method: str = "gaussian") -> np.ndarray:
    """Local threshold: foreground where a pixel is brighter than its neighbourhood's mean minus ``offset``.

    Uneven illumination shifts the right threshold from place to place; comparing each
    pixel with a local (Gaussian-weighted or box) mean follows the shift. Wraps
    ``skimage.filters.threshold_local`` (same ``block_size``, ``offset`` and ``method`` meaning).

    Args:
        image: ``(H, W)`` uint8.
        block_size: odd neighbourhood size in pixels, larger than the objects (otherwise
            an object's interior is compared with itself and comes out hollow).
        offset: subtracted from the local mean; positive values grow the foreground.
        method: ``"gaussian"`` or ``"mean"``.

    Returns:
        ``(H, W)`` bool mask.

    Raises:
        ValueError: an even or too small ``block_size``, or an unknown ``method``.
    """
    from skimage.filters import threshold_local

    image = _check_image(image)
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 3 or block_size % 2 == 0:
        raise ValueError(f"block_size must be an odd integer >= 3, got {block_size!r}")
    if method not in ("gaussian", "mean"):
        raise ValueError(f"method must be 'gaussian' or 'mean', got {method!r}")
    local = threshold_local(image.astype(np.float64), block_size=int(block_size), method=method, offset=offset)
    return image > local


# ----------------------------------------------------------------------------------------------
# morphology
# ----------------------------------------------------------------------------------------------

def _disk(radius: int) -> np.ndarray:
    from skimage.morphology import disk

    return disk(check_int(radius, "radius", minimum=0)).astype(bool)


#: how :func:`open_mask` and :func:`close_mask` treat the pixels outside the image
BORDERS: tuple[str, ...] = ("background", "edge", "reflect")


def open_mask(mask: np.ndarray, radius: int = 1, *, border: str = "background") -> np.ndarray:
    """Morphological opening (erode, then dilate) with a disk: removes specks and thin bridges
    narrower than about ``2 * radius + 1`` pixels. ``(H, W)`` binary -> ``(H, W)`` bool.

    Args:
        mask: ``(H, W)`` bool or 0/1 (numpy or torch).
        radius: the disk's radius in pixels (0 returns a copy).
        border: what lies outside the image. ``"background"`` (lesson 01): nothing, so an object
            touching the border is eroded from that side too; ``"edge"``: the border pixels
            repeated; ``"reflect"``: the image mirrored at its edge (``skimage.morphology.opening``'s
            convention; lesson 10's post-processing).
    """
    return _morphology("opening", mask, radius, border)


def close_mask(mask: np.ndarray, radius: int = 1, *, border: str = "edge") -> np.ndarray:
    """Morphological closing (dilate, then erode) with a disk: fills gaps and notches narrower than
    about ``2 * radius + 1`` pixels. ``(H, W)`` binary -> ``(H, W)`` bool.

    Args:
        mask: ``(H, W)`` bool or 0/1 (numpy or torch).
        radius: the disk's radius in pixels (0 returns a copy).
        border: what lies outside the image. ``"edge"`` (lesson 01): the border pixels repeated, so
            an object touching the border is not eaten; ``"background"``: nothing; ``"reflect"``:
            the image mirrored at its edge (``skimage.morphology.closing``'s convention; lesson 10's
            post-processing).
    """
    return _morphology("closing", mask, radius, border)


def _morphology(operation: str, mask, radius: int, border: str) -> np.ndarray:
    """``operation`` (``"opening"`` or ``"closing"``) with a disk of ``radius``, outside the image as ``border`` says."""
    from scipy import ndimage

    mask, footprint = as_binary_mask(mask), _disk(radius)
    if border not in BORDERS:
        raise ValueError(f"border must be one of {', '.join(BORDERS)}, got {border!r}")
    if radius == 0:
        return mask.copy()
    if border == "reflect":
        from skimage import morphology

        return getattr(morphology, operation)(mask, footprint).astype(bool)
    binary = ndimage.binary_opening if operation == "opening" else ndimage.binary_closing
    if border == "background":
        return binary(mask, structure=footprint, border_value=0)
    pad = int(radius)
    return binary(np.pad(mask, pad, mode="edge"), structure=footprint, border_value=0)[pad:-pad, pad:-pad]


def fill_holes(mask: np.ndarray, max_size: int | None = None) -> np.ndarray:
    """Fill background regions enclosed by foreground (4-connected, not touching the border).

    Args:
        mask: ``(H, W)`` bool or 0/1 (numpy or torch).
        max_size: fill only holes of at most this many pixels (``None``: every hole, like
            ``scipy.ndimage.binary_fill_holes``).

    Returns:
        ``(H, W)`` bool.
    """
    from scipy import ndimage

    mask = as_binary_mask(mask)
    if max_size is None:
        return ndimage.binary_fill_holes(mask)
    max_size = check_int(max_size, "max_size", minimum=0)
    labels, count = ndimage.label(~mask)
    if count == 0:
        return mask.copy()
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    areas = np.bincount(labels.ravel())
    fill = areas <= max_size
    fill[0] = False
    fill[border] = False
    return mask | fill[labels]


def remove_small(mask: np.ndarray, min_size: int) -> np.ndarray:
    """Drop 8-connected foreground components with fewer than ``min_size`` pixels. ``(H, W)`` binary -> bool."""
    min_size = check_int(min_size, "min_size", minimum=0)
    labels, _ = connected_components(mask, connectivity=2)
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]


# ----------------------------------------------------------------------------------------------
# instances
# ----------------------------------------------------------------------------------------------

def connected_components(mask: np.ndarray, connectivity: int = 1) -> tuple[np.ndarray, int]:
    """Label the connected foreground regions.

    Args:
        mask: ``(H, W)`` bool.
        connectivity: ``1`` = 4-neighbourhood (edges), ``2`` = 8-neighbourhood (edges and corners);
            the meaning of ``skimage.measure.label``'s ``connectivity``.

    Returns:
        ``(labels, n)``: ``(H, W)`` int32 with background ``0`` and regions ``1..n`` numbered in
        raster order (the same numbering as ``skimage.measure.label``), and the count ``n``.
    """
    from scipy import ndimage

    mask = as_binary_mask(mask)
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 (4-neighbourhood) or 2 (8-neighbourhood), got {connectivity!r}")
    structure = ndimage.generate_binary_structure(2, connectivity)
    labels, n = ndimage.label(mask, structure=structure)
    return labels.astype(np.int32), int(n)


def region_grow(image: np.ndarray, seeds: Iterable[tuple[int, int]], tolerance: float,
                mode: str = "mean") -> np.ndarray:
    """Seeded region growing: each seed grows a region over 4-connected pixels of similar grey level.

    Pixels are taken in order of how close their grey level is to the neighbouring region
    (a priority queue, the ordering of Adams & Bischof's seeded region growing), and join it
    while the difference is at most ``tolerance``. ``mode="mean"`` compares with the region's
    running mean (the region adapts as it grows); ``mode="seed"`` compares with the seed's own
    value (then a single seed gives exactly
    ``skimage.segmentation.flood(image, seed, tolerance=tolerance, connectivity=1)``).

    With a finite ``tolerance`` this is a **flood fill** with a similarity test, not Adams &
    Bischof's method: their SRG has no tolerance and assigns *every* pixel to the most similar
    adjacent region, so every region, the background included, needs a seed. ``tolerance=math.inf``
    with a seed in each region gives that behaviour (up to the queue keys, which use the
    region mean at the time a pixel is queued, as in their sequential sorted list).

    Args:
        image: ``(H, W)`` uint8.
        seeds: ``(row, col)`` pixel coordinates; seed ``k`` (from 0) grows region ``k + 1``.
        tolerance: largest accepted absolute grey-level difference (>= 0; ``math.inf``: no limit).
        mode: ``"mean"`` or ``"seed"``.

    Returns:
        ``(H, W)`` int32 labels: ``0`` where no region reached, else the seed's region number.
        Regions never overlap: a pixel belongs to the first region that reaches it with the
        smallest difference.

    Raises:
        ValueError: a seed outside the image, two identical seeds, a negative tolerance or an unknown mode.

    References:
        R. Adams, L. Bischof, "Seeded region growing", IEEE TPAMI 16(6), 1994. https://doi.org/10.1109/34.295913
    """
    image = _check_image(image)
    if mode not in ("mean", "seed"):
        raise ValueError(f"mode must be 'mean' or 'seed', got {mode!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.integer, np.floating)) \
            or np.isnan(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative number of grey levels (or math.inf), got {tolerance!r}")
    h, w = image.shape
    seeds = [tuple(int(v) for v in s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct pixels, got {seeds}")
    labels = np.zeros((h, w), np.int32)
    img = image.astype(np.float64)
    total, count, ref = [], [], []
    heap: list[tuple[float, int, int, int, int]] = []
    order = 0
    for k, (r, c) in enumerate(seeds):
        if not (0 <= r < h and 0 <= c < w):
            raise ValueError(f"seed {k} at (row={r}, col={c}) is outside the image of shape {image.shape}")
        labels[r, c] = k + 1
        total.append(img[r, c])
        count.append(1)
        ref.append(img[r, c])
    for k, (r, c) in enumerate(seeds):
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h and 0 <= cc < w and labels[rr, cc] == 0:
                heapq.heappush(heap, (abs(img[rr, cc] - ref[k]), order, rr, cc, k))
                order += 1
    while heap:
        _, _, r, c, k = heapq.heappop(heap)
        if labels[r, c]:
            continue
        centre = total[k] / count[k] if mode == "mean" else ref[k]
        if abs(img[r, c] - centre) > tolerance:   # the mean may have moved since the push: re-test
            continue
        labels[r, c] = k + 1
        total[k] += img[r, c]
        count[k] += 1
        centre = total[k] / count[k] if mode == "mean" else ref[k]
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < h and 0 <= cc < w and labels[rr, cc] == 0:
                heapq.heappush(heap, (abs(img[rr, cc] - centre), order, rr, cc, k))
                order += 1
    return labels


def flood_fill(image: np.ndarray, seed: tuple[int, int], tolerance: float) -> np.ndarray:
    """The 4-connected pixels reachable from ``seed`` whose grey level is within ``tolerance`` of the seed's.

    Equals :func:`region_grow` ``(image, [seed], tolerance, mode="seed") > 0`` and
    ``skimage.segmentation.flood(image, seed, tolerance=tolerance, connectivity=1)`` (tested), computed as the
    connected component of ``|image - image[seed]| <= tolerance`` that holds the seed, which is much faster.

    Args:
        image: ``(H, W)`` uint8. seed: ``(row, col)``. tolerance: grey levels (>= 0).

    Returns:
        ``(H, W)`` bool mask.
    """
    image = _check_image(image)
    r, c = (int(v) for v in seed)
    if not (0 <= r < image.shape[0] and 0 <= c < image.shape[1]):
        raise ValueError(f"seed (row={r}, col={c}) is outside the image of shape {image.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 grey levels, got {tolerance!r}")
    from scipy import ndimage

    similar = np.abs(image.astype(np.float64) - float(image[r, c])) <= tolerance
    labels, _ = ndimage.label(similar)
    return labels == labels[r, c]


def flood_from_clicks(image: np.ndarray, clicks: Iterable[tuple[int, int, bool]], tolerance: float) -> np.ndarray:
    """Lesson 12's classical baseline for clicks: the union of the flood fills from the positive clicks,
    minus the flood fills from the negative clicks.

    Args:
        image: ``(H, W)`` uint8.
        clicks: ``(row, col, positive)`` triples (the protocol of :mod:`segcourse.metrics.interactive`).
        tolerance: grey levels of :func:`flood_fill`.

    Returns:
        ``(H, W)`` bool mask (all ``False`` with no positive click).
    """
    image = _check_image(image)
    add = np.zeros(image.shape, bool)
    remove = np.zeros(image.shape, bool)
    for r, c, positive in clicks:
        region = flood_fill(image, (r, c), tolerance)
        if positive:
            add |= region
        else:
            remove |= region
    return add & ~remove


def watershed_distance(mask: np.ndarray, smooth: float = 1.0) -> np.ndarray:
    """The distance map :func:`watershed_instances` floods: Euclidean distance to the background, smoothed.

    Args:
        mask: ``(H, W)`` bool foreground.
        smooth: Gaussian sigma in pixels applied to the distance map (0 = none); the smoothed map
            is set to 0 outside the mask again.

    Returns:
        ``(H, W)`` float64, 0 on the background.
    """
    from scipy import ndimage

    mask = as_binary_mask(mask)
    if isinstance(smooth, bool) or not isinstance(smooth, (int, float, np.integer, np.floating)) or not smooth >= 0:
        raise ValueError(f"smooth must be >= 0, got {smooth!r}")
    distance = ndimage.distance_transform_edt(mask)
    if smooth > 0:
        distance = ndimage.gaussian_filter(distance, smooth) * mask
    return distance


def watershed_instances(mask: np.ndarray, min_distance: int = 5, smooth: float = 1.0,
                        return_markers: bool = False):
    """Split touching objects: distance transform -> one marker per peak -> watershed.

    Inside a foreground blob, the Euclidean distance to the background peaks near each
    object's centre; two round objects that touch give two peaks joined by a saddle at
    the neck. Flooding ``-distance`` from one marker per peak draws the dividing lines
    along the necks.

    Args:
        mask: ``(H, W)`` bool foreground (e.g. an Otsu mask after clean-up).
        min_distance: peaks closer than this many pixels merge into one marker. Too small
            splits an elongated object in two (over-segmentation); too large merges
            neighbours (under-segmentation). About an object's radius works.
        smooth: Gaussian sigma applied to the distance map before finding peaks (0 = none);
            removes spurious peaks from ragged edges.
        return_markers: also return the ``(H, W)`` int32 marker image.

    Returns:
        ``(H, W)`` int32 labels ``0..n`` (or ``(labels, markers)``). Every foreground pixel gets a
        label; each connected component has at least one marker.

    References:
        L. Vincent, P. Soille, IEEE TPAMI 13(6), 1991. https://doi.org/10.1109/34.87344
        (``skimage.segmentation.watershed`` and ``skimage.feature.peak_local_max`` do the work).
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    mask = as_binary_mask(mask)
    min_distance = check_int(min_distance, "min_distance")
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0, got {smooth!r}")
    distance = watershed_distance(mask, smooth)
    components, n = connected_components(mask, connectivity=2)
    peaks = peak_local_max(distance, min_distance=int(min_distance), labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    # a component without a peak (a tiny or flat blob) still gets one marker, at its deepest pixel
    have = np.zeros(n + 1, bool)
    have[components[markers > 0]] = True
    next_id = len(peaks) + 1
    for comp in np.flatnonzero(~have[1:]) + 1:
        idx = np.argmax(np.where(components == comp, distance, -1.0))
        markers.flat[idx] = next_id
        next_id += 1
    labels = watershed(-distance, markers, mask=mask).astype(np.int32)
    return (labels, markers) if return_markers else labels


def watershed_labels(image) -> np.ndarray:
    """Lesson 01's tuned instance pipeline on a colour image: ``(H, W)`` int32 labels.

    Grey = channel mean (:func:`to_uint8`), :func:`otsu_threshold`, :func:`open_mask` with radius 1,
    :func:`fill_holes`, :func:`remove_small` below 30 pixels, then :func:`watershed_instances` with
    ``min_distance=5``. Lesson 08 scores it against Mask R-CNN on the same cells.

    Args:
        image: ``(H, W, 3)`` uint8, or ``(3, H, W)`` float in [0, 1] (a dataset's tensor; numpy or torch).
    """
    image = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = np.moveaxis(image, 0, -1) * 255.0
    grey = to_uint8(image.mean(axis=-1))
    mask = remove_small(fill_holes(open_mask(global_threshold(grey, otsu_threshold(grey)), 1)), 30)
    return watershed_instances(mask, min_distance=5).astype(np.int32)
