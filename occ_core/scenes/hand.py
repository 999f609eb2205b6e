"""A 21-joint kinematic hand (MediaPipe joint order) made of capsules and a palm, and a grasp routine
that closes it onto an object's SDF.

Joint order: 0 wrist; thumb 1 CMC, 2 MCP, 3 IP, 4 tip; index 5 MCP, 6 PIP, 7 DIP, 8 tip; middle
9–12; ring 13–16; pinky 17–20. Hand frame (a right hand): wrist at the origin, fingers along +y,
the palm faces +z (fingers curl towards +z), the thumb is on the +x side.

The grasp follows GraspIt's auto-grasp: the palm is laid against the object's surface, then each
finger's joints close in turn from the knuckle outwards, each joint stopping when its link or a link
beyond it touches the surface, so every finger ends with its tip (or a closer link) in contact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occ_core.geometry import rotation_about
from occ_core.scenes.sdf import sd_capsule, sd_ellipsoid

FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
BONES = tuple((0, f[0]) for f in FINGERS) + tuple((f[i], f[i + 1]) for f in FINGERS for i in range(3))
# (wrist→finger-base bones lie inside the palm; they carry the kinematic frames the 3D branch uses)

# Unit hand (scale 1 ≈ an adult hand, wrist to middle tip ≈ 18 cm)
_MCP = np.array([[0.030, 0.085, 0.0], [0.010, 0.090, 0.0], [-0.010, 0.086, 0.0], [-0.028, 0.078, 0.0]])
_PHALANGES = np.array([[0.040, 0.025, 0.020], [0.045, 0.028, 0.022], [0.042, 0.026, 0.021], [0.032, 0.020, 0.018]])
_SPREAD = np.radians([6.0, 0.0, -6.0, -12.0])
_THUMB_CMC = np.array([0.022, 0.022, 0.008])
_THUMB_BONES = np.array([0.040, 0.032, 0.027])
_FINGER_RADII = np.array([0.0095, 0.0085, 0.0078])
_PALM_CENTER = np.array([0.0, 0.048, 0.0])
_PALM_RADII = np.array([0.047, 0.055, 0.0145])
MAX_FLEX = np.radians([90.0, 105.0, 80.0])  # MCP, PIP, DIP (thumb: MCP, IP and a CMC swing)
_CONTACT_TOL = 0.0015
SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.92, 0.72, 0.58], [0.80, 0.60, 0.45], [0.65, 0.46, 0.32],
                       [0.48, 0.33, 0.23], [0.33, 0.22, 0.15]])


@dataclass
class Hand:
    """A posed hand: joint positions (21×3, world frame), bone radii, palm ellipsoid, skin colour."""

    joints: np.ndarray
    scale: float
    skin: tuple
    palm_center: np.ndarray
    palm_axes: np.ndarray  # 3×3 rotation whose columns are the palm ellipsoid's axes (world frame)

    def capsules(self) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """(a, b, radius) for every visible bone (the finger phalanges; the palm covers the rest)."""
        out = []
        for f_i, f in enumerate(FINGERS):
            chain = [f[0], f[1], f[2], f[3]]
            radii = _FINGER_RADII * self.scale * (1.1 if f_i == 0 else 1.0)
            out += [(self.joints[chain[i]], self.joints[chain[i + 1]], float(radii[i])) for i in range(3)]
            if f_i == 0:  # the thumb's metacarpal sits outside the palm: draw it from the wrist
                out.append((self.joints[0] * 0.6 + self.joints[1] * 0.4, self.joints[1], float(radii[0] * 1.2)))
        return out

    def palm_radii(self) -> np.ndarray:
        return _PALM_RADII * self.scale

    def surface_samples(self) -> tuple[np.ndarray, np.ndarray]:
        """Points on the bones' axes with their radii, and points on the palm (radius 0): the hand's
        surface is within radius of each, so ``object_sdf(p) - r`` is the clearance there."""
        t = np.linspace(0.0, 1.0, 12)[:, None]
        caps = self.capsules()
        pts = np.concatenate([a + (b - a) * t for a, b, _ in caps])
        radii = np.repeat([r for _, _, r in caps], len(t))
        palm = _ellipsoid_samples(self.palm_radii()) @ self.palm_axes.T + self.palm_center
        return np.concatenate([pts, palm]), np.concatenate([radii, np.zeros(len(palm))])

    def clearance(self, object_sdf) -> float:
        """Smallest distance from the hand's surface to the object's (negative: penetration depth)."""
        pts, radii = self.surface_samples()
        return float(np.min(object_sdf(pts) - radii))

    def sdf(self, p: np.ndarray) -> np.ndarray:
        """Signed distance to the hand surface (union of capsules and the palm ellipsoid)."""
        d = sd_ellipsoid((p - self.palm_center) @ self.palm_axes, self.palm_radii())
        for a, b, r in self.capsules():
            d = np.minimum(d, sd_capsule(p, a, b, r))
        return d

    def to_dict(self) -> dict:
        return {"joints": self.joints.tolist(), "scale": self.scale, "skin": list(self.skin),
                "palm_center": self.palm_center.tolist(), "palm_axes": self.palm_axes.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Hand":
        return cls(np.asarray(d["joints"]), float(d["scale"]), tuple(d["skin"]),
                   np.asarray(d["palm_center"]), np.asarray(d["palm_axes"]))


def finger_chain(base: np.ndarray, direction: np.ndarray, flex_axis: np.ndarray, lengths: np.ndarray,
                 angles: np.ndarray) -> np.ndarray:
    """Joint positions (4×3 for 3 bones) of a planar finger chain starting at ``base``.

    ``angles`` (…, 3) are cumulative-free flexions of each joint about ``flex_axis``; leading
    dimensions are kept, so many poses are evaluated at once."""
    angles = np.asarray(angles, float)
    out = [np.broadcast_to(base, angles.shape[:-1] + (3,))]
    total = np.zeros(angles.shape[:-1])
    d0 = direction / np.linalg.norm(direction)
    k = flex_axis / np.linalg.norm(flex_axis)
    for i in range(3):
        total = total + angles[..., i]
        c, s = np.cos(total)[..., None], np.sin(total)[..., None]
        # Rodrigues for d0 ⟂ k: d = d0 cos + (k × d0) sin
        d = d0 * c + np.cross(k, d0) * s
        out.append(out[-1] + d * lengths[i])
    return np.stack(out, axis=-2)


def _finger_setup(scale: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(base, direction, flex axis, bone lengths) for thumb, index, middle, ring, pinky (hand frame)."""
    setups = []
    thumb_dir = np.array([0.75, 0.6, -0.15])
    thumb_dir /= np.linalg.norm(thumb_dir)
    towards_palm = np.array([-0.35, 0.25, 0.9])
    thumb_axis = np.cross(thumb_dir, towards_palm)
    setups.append((_THUMB_CMC * scale, thumb_dir, thumb_axis, _THUMB_BONES * scale))
    for i in range(4):
        d = np.array([-np.sin(_SPREAD[i]), np.cos(_SPREAD[i]), 0.0])
        # flexing turns the finger from +y towards +z: rotation about the axis d × z... = +x-ish
        setups.append((_MCP[i] * scale, d, np.cross(np.array([0.0, 0.0, 1.0]), d) * -1.0, _PHALANGES[i] * scale))
    return setups


def _capsule_samples(chain: np.ndarray, n: int = 5) -> np.ndarray:
    """Points along each of the 3 bones of chains (…, 4, 3) → (…, 3 bones, n, 3)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    a, b = chain[..., :-1, None, :], chain[..., 1:, None, :]
    return a + (b - a) * t


def close_finger(object_sdf, base, direction, axis, lengths, radii, to_world, n_angles: int = 24) -> tuple[np.ndarray, bool]:
    """Close one finger's three joints in turn onto the object (see module doc).

    Returns the three flexion angles and whether the finger ends touching the object."""

    def gap(cand: np.ndarray, j: int) -> np.ndarray:
        """Smallest distance between links j.. and the object for each candidate pose (A, 3)."""
        pts = _capsule_samples(finger_chain(base, direction, axis, lengths, cand))[:, j:]
        d = object_sdf(to_world(pts.reshape(-1, 3))).reshape(pts.shape[:-1]) - radii[j:, None]
        return d.min(axis=(1, 2))

    angles = np.zeros(3)
    for j in range(3):
        if gap(angles[None], j)[0] <= _CONTACT_TOL:
            continue  # link j or one beyond it already touches: this joint stays where it is
        lo, hi = angles[j], MAX_FLEX[j]
        for _ in range(2):  # a coarse sweep, then a fine one between the last free and first touching angle
            cand = np.repeat(angles[None], n_angles, 0)
            cand[:, j] = np.linspace(lo, hi, n_angles)
            hit = gap(cand, j) <= _CONTACT_TOL
            if not hit.any():
                lo = hi
                break
            first = int(np.argmax(hit))
            lo, hi = cand[max(first - 1, 0), j], cand[first, j]
        angles[j] = lo
    return angles, bool(gap(angles[None], 0)[0] <= 2 * _CONTACT_TOL)


def _ellipsoid_samples(radii: np.ndarray, n: int = 24) -> np.ndarray:
    """Points on an axis-aligned ellipsoid's surface (a latitude-longitude net)."""
    th, ph = np.meshgrid(np.linspace(0, np.pi, n // 2), np.linspace(0, 2 * np.pi, n, endpoint=False), indexing="ij")
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3) * radii


MAX_PENETRATION = 0.002  # deepest a hand may cut into the object before the grasp is redone


def grasp(object_sdf, long_axis: np.ndarray, center: np.ndarray, half_length: float, grasp_range: tuple,
          rng: np.random.Generator, attempts: int = 8) -> Hand:
    """Pose a random hand around an object given by its SDF (object frame = world frame here).

    The knuckle line runs along the object's long axis so the fingers wrap around its cross-section;
    the palm is laid on the surface from a random side, at a random point of ``grasp_range``
    (fractions of the half-length along the long axis), with a small random tilt. A placement that
    still cuts deeper than ``MAX_PENETRATION`` into the object (a mug's handle, a bowl's rim) is
    redone from another side; the least penetrating of ``attempts`` is kept."""
    scale = float(rng.uniform(0.85, 1.1))
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    skin = tuple(np.clip(tone * rng.uniform(0.92, 1.08, 3), 0, 1))
    best = None
    for _ in range(attempts):
        hand = _place_hand(object_sdf, long_axis, center, half_length, grasp_range, scale, skin, rng)
        depth = hand.clearance(object_sdf)
        if best is None or depth > best[0]:
            best = (depth, hand)
        if depth >= -MAX_PENETRATION:
            break
    return best[1]


def _place_hand(object_sdf, long_axis, center, half_length, grasp_range, scale, skin, rng) -> Hand:
    ax = long_axis / np.linalg.norm(long_axis)
    helper = np.array([1.0, 0, 0]) if abs(ax[0]) < 0.9 else np.array([0, 1.0, 0])
    side = np.cross(ax, helper)
    side /= np.linalg.norm(side)
    approach = rotation_about(ax, rng.uniform(0, 2 * np.pi)) @ side  # from the object out to the palm
    along = center + ax * half_length * rng.uniform(*grasp_range)

    # find the surface along the approach ray (first inside sample walking in from outside)
    ts = np.linspace(0.25, -0.05, 601)
    d = object_sdf(along + ts[:, None] * approach)
    inside = np.nonzero(d <= 0)[0]
    surface = along + ts[inside[0]] * approach if len(inside) else along

    # hand frame axes in world: x along the knuckle line (±long axis), z (palm normal) = -approach
    z = -approach
    x = ax * (1 if rng.random() < 0.5 else -1)
    tilt = rotation_about(z, rng.normal(0, 0.2)) @ rotation_about(x, rng.normal(0, 0.12))
    x = tilt @ x
    z = tilt @ z
    y = np.cross(z, x)
    x = np.cross(y, z)
    Rw = np.stack([x, y, z], 1)  # columns: hand axes in world

    # put the palm's front face on the surface, the object's axis across the base of the fingers
    contact_local = np.array([0.0, 0.062, _PALM_RADII[2]]) * scale
    origin = surface - Rw @ contact_local - z * 0.0015

    # a tilted palm, the open fingers or the thumb may cut into an edge or a handle: back the hand
    # off along the palm normal until all of them clear the surface
    open_pose = np.concatenate([_capsule_samples(finger_chain(b, d, a, l, np.zeros(3))).reshape(-1, 3)
                                for b, d, a, l in _finger_setup(scale)])
    open_radii = np.repeat(_FINGER_RADII * scale, 5)[None].repeat(5, 0).reshape(-1)
    palm_pts = _ellipsoid_samples(_PALM_RADII * scale) + _PALM_CENTER * scale
    for _ in range(4):
        gaps = np.concatenate([object_sdf(open_pose @ Rw.T + origin) - open_radii,
                               object_sdf(palm_pts @ Rw.T + origin)])
        if gaps.min() >= 0.001:
            break
        origin = origin - z * (0.0015 - gaps.min())

    def to_world(p_hand):
        return p_hand @ Rw.T + origin

    joints = np.zeros((21, 3))
    for f_i, (base, direction, axis, lengths) in enumerate(_finger_setup(scale)):
        radii = _FINGER_RADII * scale * (1.1 if f_i == 0 else 1.0)
        angles, _ = close_finger(object_sdf, base, direction, axis, lengths, radii, to_world)
        chain = finger_chain(base, direction, axis, lengths, angles)
        joints[list(FINGERS[f_i])] = to_world(chain)
    joints[0] = origin
    return Hand(joints=joints, scale=scale, skin=skin, palm_center=to_world(_PALM_CENTER * scale), palm_axes=Rw)
