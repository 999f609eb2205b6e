"""Objects, attributes and the grasp: geometry checked against hand-made cases."""
import numpy as np
import pytest

from occ_core.meshing import mesh_sdf, surface_bounds
from occ_core.scenes.attributes import compute_attributes
from occ_core.scenes.generate import make_scene
from occ_core.scenes.objects import CATEGORIES, build_object
from occ_core.scenes.sdf import Material, Part, Primitive, Shape

GREY = Material((0.5, 0.5, 0.5))


def _mesh(shape):
    return mesh_sdf(shape.sdf, *surface_bounds(shape.sdf))


@pytest.mark.parametrize("category", CATEGORIES)
def test_sdf_sign_inside_and_outside_every_category(category):
    shape = build_object(category, np.random.default_rng(5)).shape
    mesh = _mesh(shape)
    assert mesh.is_watertight and mesh.volume > 0
    v, n = np.asarray(mesh.vertices), np.asarray(mesh.vertex_normals)
    # 0.4 mm below / above the surface along the normal: inside negative, outside positive
    # (thinner than any wall: the knife blade is 2.5 mm, shells 3 mm)
    inside, outside = shape.sdf(v - 0.0004 * n), shape.sdf(v + 0.0004 * n)
    assert np.mean(inside < 0) > 0.97, category
    assert np.mean(outside > 0) > 0.97, category
    assert shape.sdf(np.array([[1.0, 1.0, 1.0]]))[0] > 1.0  # far away: positive and about the distance


@pytest.mark.parametrize("category", CATEGORIES)
def test_shape_json_round_trip(category):
    shape = build_object(category, np.random.default_rng(2)).shape.translated([0.01, -0.02, 0.03])
    pts = np.random.default_rng(0).uniform(-0.15, 0.15, (500, 3))
    again = Shape.from_dict(shape.to_dict())
    assert np.array_equal(shape.sdf(pts), again.sdf(pts))
    assert np.array_equal(shape.colors(pts), again.colors(pts))


def test_translated_moves_the_surface():
    shape = build_object("mug", np.random.default_rng(1)).shape  # carve and clip move too
    moved = shape.translated([0.05, 0.0, -0.02])
    pts = np.random.default_rng(3).uniform(-0.1, 0.1, (1000, 3))
    assert np.allclose(moved.sdf(pts + [0.05, 0.0, -0.02]), shape.sdf(pts))


def _attrs(*parts):
    shape = Shape([Part(p, GREY) for p in parts])
    mesh = _mesh(shape)
    return compute_attributes(shape.sdf, *mesh.bounds)


def test_attributes_of_hand_made_shapes():
    cyl = _attrs(Primitive("cylinder", {"radius": 0.03, "half_height": 0.1}))  # a bottle-like can
    assert (cyl["round"], cyl["long"], cyl["thin"]) == (True, True, False)
    stubby = _attrs(Primitive("cylinder", {"radius": 0.03, "half_height": 0.05}))
    assert (stubby["round"], stubby["long"], stubby["thin"]) == (True, False, False)
    ball = _attrs(Primitive("sphere", {"radius": 0.04}))
    assert (ball["round"], ball["long"], ball["thin"]) == (True, False, False)
    phone = _attrs(Primitive("round_box", {"half": [0.075, 0.035, 0.004], "rounding": 0.002}))
    assert (phone["round"], phone["long"], phone["thin"]) == (False, False, False)
    rod = _attrs(Primitive("round_box", {"half": [0.1, 0.01, 0.005], "rounding": 0.002}))
    assert (rod["round"], rod["long"], rod["thin"]) == (False, True, True)
    pencil = _attrs(Primitive("cylinder", {"radius": 0.005, "half_height": 0.07}))
    assert (pencil["round"], pencil["long"], pencil["thin"]) == (False, True, True)  # thin wins over round
    wide_plank = _attrs(Primitive("round_box", {"half": [0.12, 0.03, 0.01], "rounding": 0.002}))
    assert (wide_plank["long"], wide_plank["thin"]) == (True, False)  # 6 cm wide: long but not slender
    # a bent tube: round cross-sections but no straight axis → not round
    arc = np.linspace(-0.6, 0.6, 7)  # bent like a banana
    pts = np.stack([0.12 * np.sin(arc), np.zeros(7), 0.12 * np.cos(arc)], -1)
    bent = _attrs(*[Primitive("capsule", {"a": pts[i], "b": pts[i + 1], "radius": 0.022}) for i in range(6)])
    assert bent["round"] is False
    assert np.isclose(cyl["extents"][0], 0.2, atol=0.004) and np.isclose(ball["extents"][2], 0.08, atol=0.004)


def test_attribute_labels_follow_the_occ_mllm_examples():
    """knife: not round, long, thin; cellphone: none; bowl: round only (the paper's figures)."""
    for category, expected in (("knife", (False, True, True)), ("cellphone", (False, False, False)),
                               ("bowl", (True, False, False))):
        for seed in range(3):
            s = make_scene(seed, 0, (category,))
            assert (s.attributes["round"], s.attributes["long"], s.attributes["thin"]) == expected, (category, seed)


TIP_JOINTS = [4, 8, 12, 16, 20]


@pytest.mark.parametrize("category", CATEGORIES)
def test_grasp_touches_without_deep_penetration(category):
    for seed in range(2):
        scene = make_scene(seed, 0, (category,))
        hand, sdf = scene.hand, scene.shape.sdf
        assert hand.joints.shape == (21, 3)
        # no part of the hand more than 2.5 mm inside the object
        assert hand.clearance(sdf) > -0.0025, (category, seed)
        # the hand touches: some finger link within 3 mm of the surface
        pts, radii = hand.surface_samples()
        assert np.min(sdf(pts) - radii) < 0.003


@pytest.mark.parametrize("category", ["ball", "can", "bottle", "jar"])
def test_fingertips_close_onto_wide_round_objects(category):
    tip_radius = 0.0078
    for seed in range(3):
        scene = make_scene(seed, 0, (category,))
        gaps = scene.shape.sdf(scene.hand.joints[TIP_JOINTS]) - tip_radius * scene.hand.scale
        assert np.sum(gaps < 0.004) >= 3, (category, seed, gaps)
