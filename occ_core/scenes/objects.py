"""Household object categories built from analytic SDF primitives, with per-instance variation.

Units are metres. Each builder returns an ``ObjectSpec``: the shape in its own frame (long axis
along local x or z as built; attributes never assume it) and where along the long axis a hand
grasps it. The eight ObMan/SOMVideo categories come first, then four more household ones.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from occ_core.geometry import rotation_about
from occ_core.scenes.sdf import Material, Part, Primitive, Shape

OBMAN_CATEGORIES = ("bottle", "bowl", "can", "jar", "knife", "cellphone", "camera", "remote")
EXTRA_CATEGORIES = ("mug", "ball", "banana", "pen")
CATEGORIES = OBMAN_CATEGORIES + EXTRA_CATEGORIES


@dataclass
class ObjectSpec:
    category: str
    shape: Shape
    grasp_range: tuple = (-0.25, 0.25)  # grasp point along the long axis, as a fraction of its half-length


def _hsv(rng, h=(0.0, 1.0), s=(0.4, 0.9), v=(0.45, 0.95)) -> tuple:
    return tuple(colorsys.hsv_to_rgb(rng.uniform(*h) % 1.0, rng.uniform(*s), rng.uniform(*v)))


def _grey(rng, lo=0.15, hi=0.85) -> tuple:
    g = rng.uniform(lo, hi)
    return (g, g, g)


def _patterned(rng, color, z_lo, z_hi) -> Material:
    """A random procedural finish: solid, label band, stripes, checker or speckle."""
    pattern = rng.choice(["solid", "band", "stripes", "checker", "speckle"])
    span = z_hi - z_lo
    mid = rng.uniform(z_lo + 0.3 * span, z_hi - 0.3 * span)
    half = rng.uniform(0.12, 0.25) * span
    return Material(color, str(pattern), _hsv(rng), period=float(rng.uniform(0.008, 0.025)),
                    band=(mid - half, mid + half))


def _rot_y(angle):
    return rotation_about([0, 1, 0], angle)


def bottle(rng) -> ObjectSpec:
    r, h = rng.uniform(0.027, 0.04), rng.uniform(0.13, 0.19)
    rn, hn = r * rng.uniform(0.33, 0.5), rng.uniform(0.03, 0.05)
    sh = r * rng.uniform(0.6, 1.0)  # shoulder height
    body_color = _hsv(rng, s=(0.3, 0.9), v=(0.3, 0.9))
    cap_color = _hsv(rng)
    parts = [
        Part(Primitive("cylinder", {"radius": r, "half_height": h / 2, "rounding": 0.006}), _patterned(rng, body_color, -h / 2, h / 2)),
        Part(Primitive("ellipsoid", {"radii": [r, r, sh]}, np.array([0, 0, h / 2 - 0.002])), Material(body_color)),
        Part(Primitive("cylinder", {"radius": rn, "half_height": (sh + hn) / 2, "rounding": 0.002},
                       np.array([0, 0, h / 2 + (sh + hn) / 2 - 0.004])), Material(body_color)),
        Part(Primitive("cylinder", {"radius": rn * 1.15, "half_height": 0.008, "rounding": 0.002},
                       np.array([0, 0, h / 2 + sh + hn - 0.004])), Material(cap_color)),
    ]
    return ObjectSpec("bottle", Shape(parts), (-0.5, 0.1))


def bowl(rng) -> ObjectSpec:
    R, t = rng.uniform(0.055, 0.085), rng.uniform(0.003, 0.005)
    rim = R * rng.uniform(0.0, 0.3)
    inner, outer = _hsv(rng, s=(0.1, 0.7)), _hsv(rng, s=(0.2, 0.8))
    mat = _patterned(rng, outer, -R, rim)
    parts = [
        Part(Primitive("sphere", {"radius": R}), mat, shell=t, clip=([0, 0, 1], rim)),
        Part(Primitive("cylinder", {"radius": R * 0.45, "half_height": 0.005, "rounding": 0.002},
                       np.array([0, 0, -R + 0.002])), Material(inner)),
    ]
    return ObjectSpec("bowl", Shape(parts), (-0.2, 0.2))


def can(rng) -> ObjectSpec:
    r, h = rng.uniform(0.026, 0.034), rng.uniform(0.09, 0.125)
    color = _hsv(rng)
    parts = [
        Part(Primitive("cylinder", {"radius": r, "half_height": h / 2, "rounding": 0.003}), _patterned(rng, color, -h / 2, h / 2)),
        Part(Primitive("torus", {"major": r * 0.92, "minor": 0.0025}, np.array([0, 0, h / 2])), Material(_grey(rng, 0.55, 0.85))),
    ]
    return ObjectSpec("can", Shape(parts), (-0.3, 0.3))


def jar(rng) -> ObjectSpec:
    r, h = rng.uniform(0.035, 0.05), rng.uniform(0.07, 0.12)
    lid_h = rng.uniform(0.012, 0.022)
    parts = [
        Part(Primitive("cylinder", {"radius": r, "half_height": h / 2, "rounding": 0.01}),
             _patterned(rng, _hsv(rng, s=(0.1, 0.6)), -h / 2, h / 2)),
        Part(Primitive("cylinder", {"radius": r * 1.03, "half_height": lid_h / 2, "rounding": 0.003},
                       np.array([0, 0, h / 2 + lid_h / 2 - 0.003])), Material(_hsv(rng))),
    ]
    return ObjectSpec("jar", Shape(parts), (-0.3, 0.2))


def knife(rng) -> ObjectSpec:
    L, W, T = rng.uniform(0.09, 0.14), rng.uniform(0.018, 0.028), rng.uniform(0.0025, 0.004)
    Lh, Wh, Th = rng.uniform(0.08, 0.11), rng.uniform(0.016, 0.024), rng.uniform(0.012, 0.018)
    blade = Material(_grey(rng, 0.6, 0.9))
    handle = Material(_hsv(rng, v=(0.2, 0.7)), str(rng.choice(["solid", "stripes", "speckle"])), _hsv(rng), period=0.01)
    parts = [
        Part(Primitive("round_box", {"half": [L / 2, W / 2, T / 2], "rounding": T / 2 * 0.9}, np.array([L / 2, 0, 0])), blade),
        Part(Primitive("round_box", {"half": [Lh / 2, Wh / 2, Th / 2], "rounding": Th / 2 * 0.8}, np.array([-Lh / 2, 0, 0])), handle),
    ]
    # the hand holds the handle: the grasp range is on the negative side of the long axis
    return ObjectSpec("knife", Shape(parts), (-0.75, -0.45))


def cellphone(rng) -> ObjectSpec:
    L, W, T = rng.uniform(0.13, 0.16), rng.uniform(0.066, 0.078), rng.uniform(0.008, 0.011)
    parts = [
        Part(Primitive("round_box", {"half": [L / 2, W / 2, T / 2], "rounding": 0.004}), Material(_hsv(rng, s=(0.0, 0.6), v=(0.1, 0.9)))),
        Part(Primitive("round_box", {"half": [L / 2 - 0.006, W / 2 - 0.004, 0.0008], "rounding": 0.0005},
                       np.array([0, 0, T / 2])), Material((0.05, 0.06, 0.08))),
    ]
    return ObjectSpec("cellphone", Shape(parts), (-0.4, 0.2))


def camera(rng) -> ObjectSpec:
    w, h, d = rng.uniform(0.1, 0.13), rng.uniform(0.06, 0.08), rng.uniform(0.035, 0.055)
    lr, ll = rng.uniform(0.018, 0.027), rng.uniform(0.025, 0.045)
    lens_rot = rotation_about([1, 0, 0], np.pi / 2)  # lens axis along -y (front of the body)
    parts = [
        Part(Primitive("round_box", {"half": [w / 2, d / 2, h / 2], "rounding": 0.006}),
             Material(_grey(rng, 0.05, 0.8), str(rng.choice(["solid", "speckle"])), _grey(rng), period=0.01)),
        Part(Primitive("cylinder", {"radius": lr, "half_height": ll / 2, "rounding": 0.003}, np.array([w * 0.1, -d / 2 - ll / 2 + 0.004, 0]), lens_rot),
             Material((0.08, 0.08, 0.08), "stripes", _grey(rng, 0.4, 0.7), period=0.008)),
        Part(Primitive("cylinder", {"radius": 0.006, "half_height": 0.004}, np.array([-w * 0.3, 0, h / 2 + 0.002])), Material(_hsv(rng))),
    ]
    return ObjectSpec("camera", Shape(parts), (-0.3, 0.3))


def remote(rng) -> ObjectSpec:
    L, W, T = rng.uniform(0.16, 0.22), rng.uniform(0.036, 0.052), rng.uniform(0.017, 0.024)
    body = Material(_grey(rng, 0.05, 0.6), str(rng.choice(["solid", "speckle"])), _grey(rng), period=0.01)
    button = _hsv(rng)
    parts = [Part(Primitive("round_box", {"half": [L / 2, W / 2, T / 2], "rounding": 0.006}), body)]
    for x in (L * 0.32, L * 0.18, L * 0.04):
        parts.append(Part(Primitive("cylinder", {"radius": W * 0.14, "half_height": 0.002},
                                    np.array([x, 0, T / 2 + 0.001])), Material(button)))
    return ObjectSpec("remote", Shape(parts), (-0.6, -0.1))


def mug(rng) -> ObjectSpec:
    r, h, t = rng.uniform(0.035, 0.045), rng.uniform(0.08, 0.105), rng.uniform(0.003, 0.005)
    R_h, r_h = rng.uniform(0.022, 0.03), rng.uniform(0.005, 0.007)
    color = _hsv(rng, s=(0.1, 0.9))
    inner = Primitive("cylinder", {"radius": r - t, "half_height": h / 2}, np.array([0, 0, t + 0.001]))
    handle_rot = rotation_about([1, 0, 0], np.pi / 2)  # torus axis along y: the handle loops in the x-z plane
    parts = [
        Part(Primitive("cylinder", {"radius": r, "half_height": h / 2, "rounding": 0.003}), _patterned(rng, color, -h / 2, h / 2), carve=inner),
        Part(Primitive("torus", {"major": R_h, "minor": r_h}, np.array([r, 0, 0]), handle_rot), Material(color), clip=([-1, 0, 0], -(r - 0.003))),
    ]
    return ObjectSpec("mug", Shape(parts), (-0.3, 0.3))


def ball(rng) -> ObjectSpec:
    r = rng.uniform(0.03, 0.05)
    mat = Material(_hsv(rng), str(rng.choice(["solid", "stripes", "checker", "speckle"])), _hsv(rng), period=r * rng.uniform(0.3, 0.7))
    return ObjectSpec("ball", Shape([Part(Primitive("sphere", {"radius": r}), mat)]), (-0.1, 0.1))


def banana(rng) -> ObjectSpec:
    """A chain of tapered capsules along a circular arc in the x-z plane."""
    chord, bend = rng.uniform(0.16, 0.2), rng.uniform(0.6, 1.1)  # bend: arc angle in radians
    radius_arc = chord / (2 * np.sin(bend / 2))
    r_mid = rng.uniform(0.015, 0.019)
    n = 6
    angles = np.linspace(-bend / 2, bend / 2, n + 1)
    pts = np.stack([radius_arc * np.sin(angles), np.zeros_like(angles), radius_arc * (np.cos(angles) - np.cos(bend / 2))], -1)
    yellow = _hsv(rng, h=(0.12, 0.17), s=(0.6, 0.9), v=(0.75, 0.95))
    parts = []
    for i in range(n):
        taper = 1.0 - 0.65 * abs((i + 0.5) / n - 0.5) * 2
        mat = Material((0.35, 0.25, 0.1)) if i in (0, n - 1) else Material(yellow, "speckle", (0.45, 0.35, 0.12), period=0.01)
        parts.append(Part(Primitive("capsule", {"a": pts[i], "b": pts[i + 1], "radius": r_mid * taper}), mat))
    return ObjectSpec("banana", Shape(parts), (-0.3, 0.3))


def pen(rng) -> ObjectSpec:
    r, L = rng.uniform(0.0045, 0.006), rng.uniform(0.12, 0.15)
    color = _hsv(rng)
    parts = [
        Part(Primitive("cylinder", {"radius": r, "half_height": L / 2, "rounding": 0.001}), _patterned(rng, color, -L / 2, L / 2)),
        Part(Primitive("capsule", {"a": [0, 0, -L / 2], "b": [0, 0, -L / 2 - 0.012], "radius": r * 0.45}), Material(_grey(rng, 0.1, 0.4))),
        Part(Primitive("cylinder", {"radius": r * 1.15, "half_height": L * 0.14, "rounding": 0.001}, np.array([0, 0, L * 0.36])), Material(_hsv(rng))),
    ]
    return ObjectSpec("pen", Shape(parts), (-0.4, 0.3))


BUILDERS = {f.__name__: f for f in (bottle, bowl, can, jar, knife, cellphone, camera, remote, mug, ball, banana, pen)}
assert tuple(BUILDERS) == CATEGORIES


def build_object(category: str, rng: np.random.Generator) -> ObjectSpec:
    """A random instance of ``category`` (one of ``CATEGORIES``)."""
    if category not in BUILDERS:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    return BUILDERS[category](rng)
