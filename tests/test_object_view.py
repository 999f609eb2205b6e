"""Framing the second view on the object: the box, the crop, and edge cases."""
import numpy as np
import pytest
from PIL import Image

from occ_core.object_view import crop_to_object, object_box


def test_box_is_square_with_margin_and_may_leave_the_image():
    mask = np.zeros((100, 100), bool)
    mask[40:60, 30:50] = True  # 20 × 20
    assert object_box(mask, margin=0.0) == (30, 40, 50, 60)
    x0, y0, x1, y1 = object_box(mask, margin=0.1)
    assert (x1 - x0, y1 - y0) == (24, 24) and (x0, y0) == (28, 38)
    mask[:] = False
    mask[0:10, 0:40] = True  # a wide object at the corner: the square reaches above the image
    x0, y0, x1, y1 = object_box(mask, margin=0.0)
    assert (x1 - x0) == (y1 - y0) == 40 and y0 < 0
    assert object_box(np.zeros((8, 8), bool)) is None


def test_crop_fills_the_image_with_the_object():
    rgb = np.full((128, 128, 3), 255, np.uint8)
    rgb[50:70, 60:80] = (200, 30, 30)  # a small red square on white
    mask = (rgb != 255).any(-1)
    view = crop_to_object(Image.fromarray(rgb), mask, margin=0.1)
    assert view.size == (128, 128)
    red = (np.asarray(view)[..., 1] < 100)
    # 20 px of object in a 24-px box → about (20/24)² of the image, up from 2.4 %
    assert 0.6 < red.mean() < 0.75
    assert red[64, 64] and not red[2, 2]


def test_empty_mask_leaves_the_image_and_a_wrong_mask_is_refused():
    rgb = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(crop_to_object(rgb, np.zeros((32, 32), bool))), rgb)
    with pytest.raises(ValueError, match="does not match"):
        crop_to_object(rgb, np.zeros((16, 16), bool))


def test_ground_truth_second_views_are_framed_and_cached(tmp_path):
    from occ_core.scenes.builder import generate_dataset, parse_splits
    from occ_core.scenes.dataset import SceneDataset
    from occ_core.vlm.render_cache import render_paths
    from occ_core.vlm.train import scene_masks
    data = tmp_path / "scenes"
    generate_dataset(data, scenes=2, views=1, size=64, seed=31, workers=1, splits=parse_splits("test=1.0"), progress=False)
    ds = SceneDataset(data, "test", with_depth=False)
    paths = render_paths(data, "test", ds.names, "occlusion-free", tmp_path / "cache")
    for i, name in enumerate(ds.names):
        item = ds[i]
        assert paths[name].parent == tmp_path / "cache" / "occlusion-free" / "test"
        framed = np.asarray(Image.open(paths[name]))
        assert framed.shape == item["occlusion_free"].shape
        assert np.array_equal(framed, np.asarray(crop_to_object(item["occlusion_free"], item["amodal_mask"])))
        # the framed masks say where the object now is: its box spans the image (less the margin)
        masks = scene_masks(ds, [name], 64, framed=True)[0].float()
        x0, y0, x1, y1 = object_box(masks[0].numpy() > 0.5, margin=0.0)
        assert max(x1 - x0, y1 - y0) >= 0.75 * 64
        assert masks[0].mean() >= item["amodal_mask"].mean()
    stamp = paths[ds.names[0]].stat().st_mtime_ns
    assert render_paths(data, "test", ds.names, "occlusion-free", tmp_path / "cache")[ds.names[0]].stat().st_mtime_ns == stamp
