"""Writing synthetic splits to disk: layout, COCO/panoptic JSON cross-checked with pycocotools, atomicity,
byte-identical rebuilds and the ``data build`` command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcourse.__main__ import main
from segcourse.data import SPLIT_OFFSETS, SegmentationFolder, ensure_dataset, generate, get_info, paths
from segcourse.data import build as build_mod
from segcourse.data.build import (
    bbox_xywh,
    dataset_dir,
    is_complete,
    panoptic_ids,
    panoptic_rgb,
)
from segcourse.data.paths import repo_root, variant_name
from segcourse.files import save_indexed_png


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_and_round_trip_through_segmentation_folder(data_root):
    folder = ensure_dataset("cells", "val", count=3, size=40, seed=2)
    assert folder == data_root / "cells" / "val-40x40-n3-seed2"
    assert {p.name for p in folder.iterdir()} == {"images", "masks", "instances", "annotations.json", "dataset.json"}
    ds = SegmentationFolder(folder, num_classes=2)
    for i in range(3):
        s = generate("cells", SPLIT_OFFSETS["val"] + i, size=40, seed=2)
        image, mask = ds[i]
        np.testing.assert_array_equal((image.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8), s.image)
        np.testing.assert_array_equal(mask.numpy(), s.mask)
        inst = _load(folder / "instances" / f"{i:05d}.png")
        assert inst.dtype == np.uint16
        np.testing.assert_array_equal(inst, s.instances)


def test_masks_are_indexed_pngs_with_the_dataset_palette(data_root):
    folder = ensure_dataset("shapes", "train", count=2, size=48)
    img = Image.open(folder / "masks" / "00000.png")
    assert img.mode == "P"
    palette = img.getpalette()
    for i, rgb in enumerate(get_info("shapes").palette):
        assert tuple(palette[3 * i:3 * i + 3]) == rgb
    assert tuple(palette[3 * 255:3 * 256]) == (255, 255, 255)      # ignore_index drawn white
    np.testing.assert_array_equal(np.array(img), generate("shapes", 0, size=48).mask)


def test_manifest_describes_the_split(data_root):
    folder = ensure_dataset("aerial", "test", count=2, size=32, seed=5)
    manifest = json.loads((folder / "dataset.json").read_text())
    assert manifest["name"] == "aerial" and manifest["split"] == "test" and manifest["count"] == 2
    assert manifest["seed"] == 5 and (manifest["height"], manifest["width"]) == (32, 32)
    assert manifest["index_offset"] == SPLIT_OFFSETS["test"]
    assert manifest["files"] == ["00000.png", "00001.png"]
    assert not (folder / "instances").exists() and not (folder / "annotations.json").exists()


@pytest.mark.parametrize("name", ["cells", "shapes"])
def test_coco_instances_decode_with_pycocotools_to_the_instance_maps(data_root, name):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    folder = ensure_dataset(name, "train", count=3, size=48)
    coco = COCO(str(folder / "annotations.json"))
    assert sorted(coco.getCatIds()) == list(get_info(name).things)
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        stem = Path(info["file_name"]).stem
        instances = _load(folder / "instances" / f"{stem}.png")
        semantic = _load(folder / "masks" / f"{stem}.png")
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert len(anns) == int(instances.max())
        rebuilt = np.zeros_like(semantic)
        for ann in anns:
            binary = coco.annToMask(ann).astype(bool)
            rle = coco.annToRLE(ann)
            assert ann["area"] == int(mask_utils.area(rle)) == int(binary.sum())
            np.testing.assert_allclose(ann["bbox"], mask_utils.toBbox(rle))
            ids = np.unique(instances[binary])
            assert len(ids) == 1 and np.array_equal(instances == ids[0], binary)
            rebuilt[binary] = ann["category_id"]
        np.testing.assert_array_equal(rebuilt, semantic)


def test_rle_encoder_matches_pycocotools_on_edge_cases():
    from pycocotools import mask as mask_utils

    from segcourse.data.coco import mask_to_rle

    def rle_encode(binary):      # what write_split stores for an instance
        return mask_to_rle(binary, compressed=False)

    cases = [np.zeros((3, 4), bool), np.ones((3, 4), bool), np.eye(4, dtype=bool),
             np.random.default_rng(0).random((7, 5)) > 0.5]
    for binary in cases:
        ours = rle_encode(binary)
        theirs = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
        compressed = mask_utils.frPyObjects(ours, *ours["size"])
        assert compressed["counts"] == theirs["counts"]
        np.testing.assert_array_equal(mask_utils.decode(compressed).astype(bool), binary)
    # hand-derived: column-major [[1, 0], [1, 1]] -> 1, 1, 0, 1 -> runs: 0 zeros, 2 ones, 1 zero, 1 one
    assert rle_encode(np.array([[1, 0], [1, 1]], bool))["counts"] == [0, 2, 1, 1]


def test_bbox_is_x_y_width_height():
    binary = np.zeros((6, 8), bool)
    binary[2:4, 3:7] = True          # rows 2-3, columns 3-6
    assert bbox_xywh(binary) == [3, 2, 4, 2]


def test_street_panoptic_png_and_segments_info_agree_with_the_sample(data_root):
    folder = ensure_dataset("street", "val", count=2, size=64)
    info = get_info("street")
    pan = json.loads((folder / "panoptic.json").read_text())
    assert {c["id"]: c["isthing"] for c in pan["categories"]} == {i: int(i in info.things) for i in range(7)}
    for i, ann in enumerate(pan["annotations"]):
        s = generate("street", SPLIT_OFFSETS["val"] + i, size=64)
        ids = panoptic_ids(_load(folder / "panoptic" / ann["file_name"]))
        assert 0 not in ids                                            # every pixel belongs to a segment
        assert sorted(seg["id"] for seg in ann["segments_info"]) == np.unique(ids).tolist()
        for seg in ann["segments_info"]:
            region = ids == seg["id"]
            assert seg["area"] == int(region.sum()) and seg["bbox"] == bbox_xywh(region)
            np.testing.assert_array_equal(region, (s.panoptic[..., 0] == seg["category_id"])
                                          & (s.panoptic[..., 1] == seg["id"] % build_mod.PANOPTIC_DIVISOR))


def test_panoptic_rgb_round_trip():
    ids = np.array([[0, 1, 255, 256], [65535, 65536, 7001, 2000]])
    rgb = panoptic_rgb(ids)
    assert rgb.dtype == np.uint8 and tuple(rgb[0, 3]) == (0, 1, 0)   # 256 = R 0 + 256 * G 1
    np.testing.assert_array_equal(panoptic_ids(rgb), ids)


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    a = ensure_dataset("street", "train", count=2, size=32, root=tmp_path / "a")
    b = ensure_dataset("street", "train", count=2, size=32, root=tmp_path / "b")
    assert _tree(a) == _tree(b) and len(_tree(a)) == 2 * 4 + 2
    c = ensure_dataset("street", "train", count=2, size=32, seed=1, root=tmp_path / "c")
    assert _tree(c)["images/00000.png"] != _tree(a)["images/00000.png"]


def test_existing_split_is_reused_and_an_incomplete_one_rebuilt(data_root):
    folder = ensure_dataset("cells", "train", count=2, size=32)
    stamp = (folder / "images" / "00000.png").stat().st_mtime_ns
    assert ensure_dataset("cells", "train", count=2, size=32) == folder
    assert (folder / "images" / "00000.png").stat().st_mtime_ns == stamp
    (folder / "masks" / "00001.png").unlink()                # e.g. an interrupted copy
    assert not is_complete(folder)
    assert ensure_dataset("cells", "train", count=2, size=32) == folder
    assert is_complete(folder) and (folder / "masks" / "00001.png").exists()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]     # no temporary folders left


def _edit_source(monkeypatch, module_name):
    """Pretend the file of ``segcourse.data.synthetic.<module_name>`` was edited (one comment appended)."""
    from segcourse.data import synthetic

    original = synthetic._source

    def edited(obj):
        text = original(obj)
        return text + "\n# edited\n" if getattr(obj, "__name__", "") == f"segcourse.data.synthetic.{module_name}" else text

    monkeypatch.setattr(synthetic, "_source", edited)


def test_a_changed_generator_source_changes_the_key(monkeypatch):
    from segcourse.data.synthetic import generator_fingerprint

    before = {name: generator_fingerprint(name) for name in ("cells", "shapes", "shapes-multiscale", "street")}
    assert before["shapes"] != before["shapes-multiscale"] != before["cells"]   # fixed knobs count too
    assert generator_fingerprint("shapes") == before["shapes"]                  # stable
    _edit_source(monkeypatch, "shapes")
    after = {name: generator_fingerprint(name) for name in before}
    assert after["shapes"] != before["shapes"] and after["shapes-multiscale"] != before["shapes-multiscale"]
    assert after["cells"] == before["cells"] and after["street"] == before["street"]  # other generators untouched
    _edit_source(monkeypatch, "_common")                                         # shared helpers: every dataset
    assert all(generator_fingerprint(name) != after[name] for name in before)


def test_a_split_written_by_an_edited_generator_is_rebuilt(data_root, monkeypatch):
    from segcourse.data import load_arrays
    from segcourse.data.synthetic import generator_fingerprint

    folder = ensure_dataset("cells", "train", count=2, size=32)
    manifest = json.loads((folder / "dataset.json").read_text())
    assert manifest["generator"] == generator_fingerprint("cells")
    (folder / "marker").write_text("from the old build")
    assert ensure_dataset("cells", "train", count=2, size=32) == folder and (folder / "marker").exists()  # reused
    _edit_source(monkeypatch, "cells")
    assert not is_complete(folder)                                   # stale, although every file is there
    assert ensure_dataset("cells", "train", count=2, size=32) == folder
    assert is_complete(folder) and not (folder / "marker").exists()  # a fresh folder replaced the stale one
    assert json.loads((folder / "dataset.json").read_text())["generator"] == generator_fingerprint("cells")
    # the in-memory cache of load_arrays is keyed by the fingerprint too
    from segcourse.data import synthetic

    load_arrays("cells", "val", count=1, size=32)
    keys = [k for k in synthetic._CACHE if k[0] == "cells" and k[1] == "val"]
    assert keys and keys[-1][-1] == generator_fingerprint("cells")


def test_a_concurrent_builder_that_finishes_first_wins(data_root, monkeypatch):
    """Simulate a second process that renames its copy into place while we are still writing ours."""
    original = build_mod.write_split

    def racing(folder, name, split, count, size, seed=0, progress=False, **knobs):
        original(folder.parent / "other", name, split, count, size, seed)
        (folder.parent / "other").rename(dataset_dir(name, split, count, size, seed, data_root))
        return original(folder, name, split, count, size, seed, progress, **knobs)

    monkeypatch.setattr(build_mod, "write_split", racing)
    folder = ensure_dataset("shapes", "val", count=2, size=32)
    assert is_complete(folder)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_knobs_get_their_own_folder(data_root):
    plain = ensure_dataset("shapes", "train", count=1, size=32)
    few = ensure_dataset("shapes", "train", count=1, size=32, objects=(1, 1))
    assert plain != few and few.name.startswith("train-32x32-n1-seed0-k")
    assert json.loads((few / "dataset.json").read_text())["knobs"] == {"objects": [1, 1]}


def test_default_count_and_size_come_from_the_mode(data_root):
    from segcourse.data import default_count, default_size

    folder = ensure_dataset("cells", "val")
    n, side = default_count("cells", "val"), default_size("cells")
    assert folder.name == variant_name("val", side, side, n, 0)
    assert len(list((folder / "images").iterdir())) == n


@pytest.mark.parametrize("kwargs, words", [
    (dict(name="cats"), "unknown synthetic dataset"),
    (dict(name="cells", split="dev"), "split"),
    (dict(name="cells", count=0), "count"),
    (dict(name="cells", seed=-1), "seed"),
])
def test_bad_arguments(data_root, kwargs, words):
    with pytest.raises(ValueError, match=words):
        ensure_dataset(**kwargs)


def test_data_root_prefers_the_environment_then_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGCOURSE_DATA", str(tmp_path))
    assert paths.data_root() == tmp_path.resolve()
    monkeypatch.delenv("SEGCOURSE_DATA")
    repo = repo_root()
    expected = repo / "datasets" if repo is not None else Path.home() / ".cache" / "segcourse" / "datasets"
    assert paths.data_root() == expected


def test_save_indexed_png_rejects_bad_masks(tmp_path):
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        save_indexed_png(tmp_path / "x.png", np.zeros((2, 2, 3)), [(0, 0, 0)])
    with pytest.raises(ValueError, match="0..255"):
        save_indexed_png(tmp_path / "x.png", np.full((2, 2), 300), [(0, 0, 0)])


# ------------------------------------------------------------------------------------------ command line
def test_cli_builds_reuses_and_is_deterministic(tmp_path, capsys):
    args = ["data", "build", "cells", "aerial", "--out", str(tmp_path / "x"), "--size", "32", "--count", "2",
            "--split", "val", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("built") == 2 and "cells/val" in out and "aerial/val" in out
    assert main(args) == 0
    assert capsys.readouterr().out.count("reused") == 2
    assert main(args[:5] + [str(tmp_path / "y")] + args[6:]) == 0
    assert _tree(tmp_path / "x") == _tree(tmp_path / "y")
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["aerial", "cells"]


def test_cli_rejects_unknown_dataset(tmp_path, capsys):
    assert main(["data", "build", "cats", "--out", str(tmp_path)]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_cli_without_action_prints_usage(capsys):
    assert main(["data"]) == 2
    assert "usage" in capsys.readouterr().err


def test_stale_temporary_folders_of_killed_builds_are_removed(data_root):
    import os

    parent = data_root / "cells"
    stale, fresh = parent / ".tmp-train-32x32-n1-seed0-123-abcd", parent / ".tmp-train-32x32-n1-seed0-456-ef01"
    for folder in (stale, fresh):
        (folder / "images").mkdir(parents=True)
    os.utime(stale, (0, 0))                                   # "modified in 1970"
    ensure_dataset("cells", "train", count=1, size=32)
    assert not stale.exists() and fresh.exists()             # a build still running elsewhere is left alone


def test_cli_prepare_forwards_to_the_recipes(monkeypatch):
    from segcourse.data import recipes

    seen = []
    monkeypatch.setattr(recipes, "main", lambda argv: seen.append(list(argv)) or 0)
    assert main(["data", "prepare", "oxford_pet", "--source", "/tmp/x", "--force"]) == 0
    assert seen == [["oxford_pet", "--source", "/tmp/x", "--force"]]


def test_two_processes_building_the_same_split_at_once_agree(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from segcourse.data import ensure_dataset; "
            "print(ensure_dataset('street', 'val', count=6, size=48, root=sys.argv[1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] and is_complete(Path(outs[0]))
    assert [p.name for p in (tmp_path / "street").iterdir()] == [Path(outs[0]).name]


def test_cli_prepare_help_reaches_the_recipes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "prepare", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "oxford_pet" in out and "voc2012" in out and "--sha256" in out
