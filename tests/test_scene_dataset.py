"""Data set generation, the on-disk format and its reader, the CLI and its bad inputs."""
import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from occ_core.errors import DatasetError, GenerationError
from occ_core.geometry import Camera
from occ_core.scenes import builder
from occ_core.scenes.builder import generate_dataset, split_counts
from occ_core.scenes.dataset import SceneDataset
from occ_core.scenes.generate import make_scene, make_views

REPO = Path(__file__).resolve().parents[1]


def tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_counts(small_dataset):
    root, summary = small_dataset
    assert summary["splits"] == {"train": 6, "val": 1, "test": 1}
    assert len(list((root / "ref" / "rgb").glob("*.jpg"))) == 16
    for split, n in summary["splits"].items():
        for kind, ext in (("rgb", "jpg"), ("segm", "png"), ("depth", "png"), ("meta", "json")):
            assert len(list((root / "sup" / split / kind).glob(f"*.{ext}"))) == 2 * n
        lines = (root / "annotations" / f"{split}.jsonl").read_text().splitlines()
        assert len(lines) == 2 * n
    assert len(list((root / "gt3d").glob("*.ply"))) == 8
    assert not list(root.parent.glob(".*partial*"))


def test_round_trip_through_the_reader(small_dataset):
    root, _ = small_dataset
    ds = SceneDataset(root, "train")
    assert len(ds) == 12
    item = ds[3]
    assert item["image"].shape == (64, 64, 3) and item["occlusion_free"].shape == (64, 64, 3)
    meta = item["meta"]
    # occlusion ratio from the masks on disk equals the one in meta
    vis, amo, hand = item["visible_mask"], item["amodal_mask"], item["hand_mask"]
    assert np.isclose(1 - vis.sum() / amo.sum(), meta["occlusion_ratio"], atol=1e-9)
    assert not np.any(vis & ~amo) and not np.any(vis & hand)
    # depth is where the hand or the object is
    assert np.all((item["depth"] > 0) == (vis | hand))
    # the scene's ground truth: camera + 3D joints reproduce the 2D joints
    gt = ds.ground_truth(ds.scene_id(3))
    cam = Camera.from_dict(meta["camera"])
    assert np.allclose(cam.project(gt["hand"].joints), meta["joints_2d"], atol=1e-6)
    assert np.allclose(cam.world_to_camera(gt["hand"].joints), meta["joints_3d_cam"], atol=1e-9)
    mesh = trimesh.load(root / "gt3d" / f"{ds.scene_id(3)}.ply")
    assert mesh.is_watertight
    # the analytic SDF is zero on the stored mesh
    assert np.abs(gt["shape"].sdf(np.asarray(mesh.vertices))).max() < 0.003
    # the five tasks, with the image token on the first question
    conv = item["conversations"]
    assert len(conv) == 10 and conv[0]["value"].endswith("<image>")
    assert conv[1]["value"] == f"The object is {meta['category']}."
    assert conv[3]["value"] == ("Yes." if meta["attributes"]["round"] else "No.")


def test_occlusion_ratio_matches_masks_for_a_fresh_view():
    scene = make_scene(4, 2)
    (view,) = make_views(scene, 4, 2, 1, 96)
    hidden = view.amodal_mask & ~view.visible_mask
    # every hidden object pixel is behind the hand
    assert np.mean(view.hand_mask[hidden]) > 0.97
    assert np.isclose(view.occlusion_ratio, hidden.sum() / view.amodal_mask.sum())


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = generate_dataset(tmp_path / "a", 3, 1, 48, seed=7, workers=1, progress=False)
    b = generate_dataset(tmp_path / "b", 3, 1, 48, seed=7, workers=2, progress=False)
    generate_dataset(tmp_path / "c", 3, 1, 48, seed=8, workers=1, progress=False)
    da, db, dc = (tree_digest(tmp_path / x) for x in "abc")
    assert da == db and a == b
    assert da != dc


def test_split_counts():
    assert split_counts(100, {"train": 0.8, "val": 0.1, "test": 0.1}) == {"train": 80, "val": 10, "test": 10}
    assert split_counts(5, {"train": 0.8, "val": 0.1, "test": 0.1}) == {"train": 3, "val": 1, "test": 1}
    assert split_counts(2, {"train": 0.8, "val": 0.1, "test": 0.1}) == {"train": 2, "val": 0, "test": 0}
    assert split_counts(4, {"test": 1.0}) == {"test": 4}


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def fail_on_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return []

    monkeypatch.setattr(builder, "write_scene", fail_on_second)
    with pytest.raises(RuntimeError):
        generate_dataset(tmp_path / "out", 3, 1, 48, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "occ_core", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_generate_and_preview(tmp_path):
    r = run_cli("data", "generate", "--out", str(tmp_path / "d"), "--scenes", "3", "--views", "2", "--size", "48", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert "wrote 3 scenes" in r.stdout
    r = run_cli("data", "preview", str(tmp_path / "d"), "--out", str(tmp_path / "sheet.png"), "--rows", "3")
    assert r.returncode == 0, r.stderr
    sheet = Image.open(tmp_path / "sheet.png")
    # 3 scenes split 1/1/1: the train split's one scene has 2 views → 2 rows of 4 tiles
    assert sheet.size == (3 * (48 + 2) + 160 + 2, 2 * (100 + 2))


@pytest.mark.parametrize("args, message", [
    (["--scenes", "0"], "must be positive"),
    (["--scenes", "-3"], "must be positive"),
    (["--scenes", "2", "--views", "0"], "must be positive"),
    (["--scenes", "2", "--size", "8"], "--size"),
    (["--scenes", "2", "--splits", "train"], "--splits"),
    (["--scenes", "2", "--categories", "spoon"], "unknown categories"),
])
def test_cli_rejects_bad_counts(tmp_path, args, message):
    r = run_cli("data", "generate", "--out", str(tmp_path / "d"), *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "d").exists()


def test_cli_rejects_bad_folders(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    r = run_cli("data", "generate", "--out", str(full), "--scenes", "1")
    assert r.returncode == 2 and "not empty" in r.stderr and "Traceback" not in r.stderr
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    r = run_cli("data", "generate", "--out", "/proc/occ-test-out", "--scenes", "1")  # not writable even for root
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "file.txt").write_text("mine")
    r = run_cli("data", "generate", "--out", str(tmp_path / "file.txt" / "d"), "--scenes", "1")
    assert r.returncode == 2 and "is not a folder" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "file.txt").read_text() == "mine"
    # missing parent folders are made, as `--out data/scenes` on a fresh clone needs
    r = run_cli("data", "generate", "--out", str(tmp_path / "no" / "such" / "dir"), "--scenes", "1", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "no" / "such" / "dir" / "dataset.json").is_file()


def test_malformed_dataset_folders(tmp_path, small_dataset):
    r = run_cli("data", "preview", str(tmp_path), "--out", str(tmp_path / "s.png"))
    assert r.returncode == 2 and "not a scenes data set" in r.stderr
    with pytest.raises(DatasetError, match="no split 'dev'"):
        SceneDataset(small_dataset[0], "dev")
    # a broken annotations file names its line
    root = tmp_path / "broken"
    (root / "sup" / "train" / "rgb").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "sup" / "train" / "rgb" / "00000000_000.jpg")
    (root / "annotations").mkdir()
    (root / "annotations" / "train.jsonl").write_text('{"id": "00000000_000", "conversations": []}\n{oops\n')
    with pytest.raises(DatasetError, match="train.jsonl:2"):
        SceneDataset(root, "train")
    r = run_cli("data", "preview", str(root), "--out", str(tmp_path / "s.png"))
    assert r.returncode == 2 and "train.jsonl:2" in r.stderr and "Traceback" not in r.stderr


def test_reads_a_somvideo_export_and_only_unpickles_when_trusted(tmp_path):
    root = tmp_path / "somvideo"
    for sub in ("SOMVideo_ref/rgb", "SOMVideo_sup/train/rgb", "SOMVideo_sup/train/segm", "SOMVideo_sup/train/meta"):
        (root / sub).mkdir(parents=True)
    Image.new("RGB", (32, 32), (10, 20, 30)).save(root / "SOMVideo_ref/rgb/00000001_000.jpg")
    for view in ("000", "001"):
        Image.new("RGB", (32, 32), (200, 200, 200)).save(root / f"SOMVideo_sup/train/rgb/00000001_{view}.jpg")
        segm = np.zeros((32, 32, 3), np.uint8)
        segm[8:20, 8:20, 0] = 100
        Image.fromarray(segm).save(root / f"SOMVideo_sup/train/segm/00000001_{view}.png")
        with open(root / f"SOMVideo_sup/train/meta/00000001_{view}.pkl", "wb") as f:
            pickle.dump({"cam_intr": [[480, 0, 128], [0, 480, 128], [0, 0, 1]]}, f)
    ds = SceneDataset(root, "train")
    with pytest.warns(UserWarning, match="--trust-pickle"):
        item = ds[0]
    assert item["meta"] is None and item["amodal_mask"].sum() == 144
    assert item["image"].shape == (32, 32, 3) and ds[1]["image"] is None  # SOMVideo keeps view 000 only
    assert "visible_mask" not in item
    trusted = SceneDataset(root, "train", trust_pickle=True)
    assert trusted[0]["meta"]["cam_intr"][0][0] == 480


def test_dataset_summary_is_written(small_dataset):
    root, summary = small_dataset
    on_disk = json.loads((root / "dataset.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert sum(on_disk["occlusion"]["histogram"]) == 16
    assert sum(v["scenes"] for v in on_disk["attributes_per_category"].values()) == 8
