"""Make one synthetic hand-held-object scene and render its views.

A scene is an object instance (exact SDF, mesh with vertex colours, attributes) grasped by a posed
hand. The world frame is the object's own frame, centred on its bounding box. Each view has a
random camera around the pair and gives the occluded RGB, the occlusion-free RGB of the object alone
from the same camera, hand / visible-object / amodal-object masks, depth and the occlusion ratio.
Randomness comes from ``np.random.default_rng([seed, scene_index])``: a scene does not depend on
which process makes it or in what order.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import trimesh

from occ_core.geometry import Camera, intrinsics_for
from occ_core.meshing import mesh_sdf, surface_bounds
from occ_core.render import Frame, MeshLayer, shared_renderer
from occ_core.scenes.attributes import compute_attributes
from occ_core.scenes.hand import Hand, grasp
from occ_core.scenes.objects import CATEGORIES, build_object
from occ_core.scenes.sdf import Shape
from occ_core.text import color_name

OBJECT_ID, HAND_ID = 1, 2
MAX_OCCLUSION = 0.92   # candidate views hiding more of the object than this are dropped
MIN_OBJECT_FRACTION = 0.02  # … and so are those where the object covers under 2 % of the image


@dataclass
class Scene:
    scene_id: str
    category: str
    shape: Shape             # exact SDF and colour field, world frame
    mesh: trimesh.Trimesh    # watertight object mesh with vertex colours, world frame
    attributes: dict
    color: str               # the object's main colour, named
    hand: Hand
    hand_mesh: trimesh.Trimesh

    @property
    def center(self) -> np.ndarray:
        return self.mesh.bounds.mean(0)

    @property
    def radius(self) -> float:
        """Half the diagonal of the object's bounding box: the object-normalised frame's unit."""
        return float(np.linalg.norm(self.mesh.bounds[1] - self.mesh.bounds[0]) / 2)


@dataclass
class View:
    camera: Camera
    occluded: np.ndarray        # (H, W, 3) uint8
    occlusion_free: np.ndarray  # (H, W, 3) uint8
    hand_mask: np.ndarray       # (H, W) bool
    visible_mask: np.ndarray
    amodal_mask: np.ndarray
    depth: np.ndarray           # (H, W) float32 metres, 0 where empty
    occlusion_ratio: float
    joints_2d: np.ndarray       # (21, 2) pixels
    joints_3d_cam: np.ndarray   # (21, 3) camera frame, metres


def category_for(index: int, seed: int, categories=CATEGORIES) -> str:
    """Categories cycle in a seeded order, so every block of len(categories) scenes is balanced."""
    order = np.random.default_rng([seed, 2**31 - 1]).permutation(len(categories))
    return categories[order[index % len(categories)]]


def make_scene(seed: int, index: int, categories=CATEGORIES) -> Scene:
    rng = np.random.default_rng([seed, index])
    spec = build_object(category_for(index, seed, categories), rng)
    mesh = mesh_sdf(spec.shape.sdf, *surface_bounds(spec.shape.sdf))
    shape = spec.shape.translated(-mesh.bounds.mean(0))
    mesh.apply_translation(-mesh.bounds.mean(0))
    mesh.visual.vertex_colors = _to_u8(shape.colors(np.asarray(mesh.vertices)))
    lo, hi = mesh.bounds
    attributes = compute_attributes(shape.sdf, lo, hi)
    ext = hi - lo
    hand = grasp(shape.sdf, np.eye(3)[int(np.argmax(ext))], np.zeros(3), float(ext.max() / 2), spec.grasp_range, rng)
    main_color = color_name(spec.shape.parts[0].material.color)
    return Scene(f"{index:08d}", spec.category, shape, mesh, attributes, main_color, hand, hand_mesh(hand))


def hand_mesh(hand: Hand) -> trimesh.Trimesh:
    """Capsules for the bones and an ellipsoid palm, in the skin colour."""
    parts = []
    for a, b, r in hand.capsules():
        length = float(np.linalg.norm(b - a))
        cap = trimesh.creation.capsule(height=max(length, 1e-4), radius=r, count=[10, 10])
        # trimesh's capsule runs along z from 0 to height: align it with a→b
        cap.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], (b - a) / max(length, 1e-9)))
        cap.apply_translation(a)
        parts.append(cap)
    palm = trimesh.creation.icosphere(subdivisions=2)
    palm.apply_scale(hand.palm_radii())
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = hand.palm_axes, hand.palm_center
    palm.apply_transform(T)
    parts.append(palm)
    mesh = trimesh.util.concatenate(parts)
    mesh.visual.vertex_colors = _to_u8(np.broadcast_to(hand.skin, (len(mesh.vertices), 3)))
    return mesh


def _to_u8(colors: np.ndarray) -> np.ndarray:
    rgb = np.clip(np.asarray(colors) * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], 1)


def _layer(mesh: trimesh.Trimesh, mesh_id: int) -> MeshLayer:
    return MeshLayer.from_trimesh(mesh, np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0, mesh_id)


def sample_camera(scene: Scene, size: int, rng: np.random.Generator) -> Camera:
    """A camera around the object, framing it at 55–85 % of the image, looking from a direction
    drawn between uniform and the hand's side (so the hand hides anything from nothing to most)."""
    towards_hand = scene.hand.palm_center - scene.center
    towards_hand /= np.linalg.norm(towards_hand)
    d = rng.normal(size=3) + towards_hand * rng.uniform(0.0, 2.5)
    d /= np.linalg.norm(d)
    half_fov = np.arctan(size / 2 / intrinsics_for(size)[0, 0])
    dist = scene.radius / np.tan(half_fov) / rng.uniform(0.55, 0.85)
    target = scene.center + rng.normal(0, 0.08, 3) * scene.radius
    return Camera.look_at(target + d * dist, target, rng.normal(size=3), size)


def _at_size(camera: Camera, size: int) -> Camera:
    return Camera(intrinsics_for(size), camera.extrinsic, size, size)


def render_view(scene: Scene, camera: Camera, background: np.ndarray, light, ambient: float) -> View:
    renderer = shared_renderer()
    obj, hnd = _layer(scene.mesh, OBJECT_ID), _layer(scene.hand_mesh, HAND_ID)
    full: Frame = renderer.render([obj, hnd], camera, light=light, ambient=ambient)
    alone: Frame = renderer.render([obj], camera, light=light, ambient=ambient)
    visible, amodal = full.ids == OBJECT_ID, alone.ids == OBJECT_ID
    ratio = 1.0 - visible.sum() / max(int(amodal.sum()), 1)
    return View(camera, full.over(background), alone.over(background), full.ids == HAND_ID, visible, amodal,
                full.depth, float(ratio), camera.project(scene.hand.joints), camera.world_to_camera(scene.hand.joints))


def make_views(scene: Scene, seed: int, index: int, n_views: int, size: int, candidates: int = 6) -> list[View]:
    """``n_views`` views. Each draws a target occlusion ratio uniformly in [0.05, 0.85], tries
    ``candidates`` cameras at a small size and keeps the one closest to it, so a data set's
    occlusion ratios spread evenly instead of piling up near zero."""
    rng = np.random.default_rng([seed, index, 1])
    renderer = shared_renderer()
    obj, hnd = _layer(scene.mesh, OBJECT_ID), _layer(scene.hand_mesh, HAND_ID)
    views = []
    for _ in range(n_views):
        background = random_background(size, rng)
        light = (rng.uniform(-0.6, 0.6), rng.uniform(-0.8, 0.3), -1.0)
        ambient = float(rng.uniform(0.28, 0.45))
        target = rng.uniform(0.05, 0.85)
        best, best_err = None, np.inf
        for _ in range(candidates):
            camera = sample_camera(scene, size, rng)
            small = _at_size(camera, 64)
            visible = (renderer.render([obj, hnd], small).ids == OBJECT_ID).sum()
            amodal = (renderer.render([obj], small).ids == OBJECT_ID).sum()
            ratio = 1.0 - visible / max(int(amodal), 1)
            if ratio > MAX_OCCLUSION or amodal < MIN_OBJECT_FRACTION * 64 * 64:
                continue
            if abs(ratio - target) < best_err:
                best, best_err = camera, abs(ratio - target)
        views.append(render_view(scene, best or camera, background, light, ambient))
    return views


@lru_cache(maxsize=1)
def _photos() -> tuple:
    """Photographs bundled with scikit-image (no download), as float RGB."""
    import skimage.data as data
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                 "retina", "brick", "grass", "gravel", "camera", "coins", "moon", "clock"):
        img = np.asarray(getattr(data, name)(), dtype=np.float32) / 255.0
        out.append(np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3])
    return tuple(out)


def random_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of a bundled photograph (2/3 of the time) or a procedural texture, (size, size, 3)."""
    from PIL import Image
    if rng.random() < 0.67:
        photo = _photos()[rng.integers(len(_photos()))]
        h, w = photo.shape[:2]
        c = int(rng.uniform(0.35, 1.0) * min(h, w))
        y, x = rng.integers(0, h - c + 1), rng.integers(0, w - c + 1)
        crop = Image.fromarray((photo[y:y + c, x:x + c] * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR)
        img = np.asarray(crop, dtype=np.float32) / 255.0
        if rng.random() < 0.5:  # tint so grey photographs vary too
            img = img * rng.uniform(0.6, 1.2, 3)
        return np.clip(img * rng.uniform(0.6, 1.1), 0, 1)
    yy, xx = np.mgrid[0:size, 0:size] / size
    c1, c2 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip((np.cos(angle) * xx + np.sin(angle) * yy + 1) / 2, 0, 1)[..., None]
    img = c1 * (1 - t) + c2 * t
    freq = rng.uniform(4, 20)
    img = img + 0.08 * np.sin(2 * np.pi * freq * (xx * np.cos(angle * 3) + yy * np.sin(angle * 3)))[..., None]
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)
