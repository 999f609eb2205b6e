"""The attributes ``round``, ``long`` and ``thin``, computed from an object instance's geometry.

Not hard-wired per category: two bottles may differ. With the object's extents along its own axes
sorted as a ≥ b ≥ c (metres):

- ``long``  : a / b ≥ LONG_RATIO (2.5). The longest side is well over twice the next one
  (bottle, knife, remote, pen, banana; not a cellphone, whose length is about twice its width).
- ``thin``  : long and b ≤ THIN_WIDTH (0.04 m). Slender, as in the OCC-MLLM labels: a knife is thin,
  a cellphone is not (it is flat, not slender).
- ``round`` : the object is a body of revolution about a straight axis and is not thin. Measured
  on SDF cross-sections: along one of the three axes, the slices through the middle 60 % of the
  object have a roundness (min / max distance of the outline from the slice centroid, holes filled,
  largest piece only) of at least ROUND_MIN (0.88), and their centroids stay within
  AXIS_DRIFT (0.15) × their mean radius of each other (a bent banana fails this). Bottle, can, jar,
  bowl, mug and ball are round; a pen is a body of revolution but thin, so it is not "round".
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

LONG_RATIO = 2.5
THIN_WIDTH = 0.04
ROUND_MIN = 0.88
AXIS_DRIFT = 0.15
_SLICE_PIXELS = 48
_SLICES = 5


def slice_roundness(sdf, lo: np.ndarray, hi: np.ndarray, axis: int, at: float) -> tuple[float, np.ndarray, float] | None:
    """(roundness, centroid, mean radius) of the object's cross-section at ``axis = at``, or None
    when the slice is (nearly) empty."""
    others = [i for i in range(3) if i != axis]
    span = float(max(hi[others[0]] - lo[others[0]], hi[others[1]] - lo[others[1]]))
    step = span / (_SLICE_PIXELS - 4)
    mid = (lo + hi) / 2
    ticks = (np.arange(_SLICE_PIXELS) - (_SLICE_PIXELS - 1) / 2) * step
    u, v = np.meshgrid(ticks + mid[others[0]], ticks + mid[others[1]], indexing="ij")
    pts = np.zeros(u.shape + (3,))
    pts[..., axis], pts[..., others[0]], pts[..., others[1]] = at, u, v
    mask = ndimage.binary_fill_holes(sdf(pts.reshape(-1, 3)).reshape(u.shape) < 0)
    labels, n = ndimage.label(mask)
    if n == 0:
        return None
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    mask = labels == (1 + int(np.argmax(sizes)))
    if mask.sum() < 12:
        return None
    boundary = mask & ~ndimage.binary_erosion(mask)
    idx = np.argwhere(mask).astype(float)
    c = idx.mean(0)
    r = np.linalg.norm(np.argwhere(boundary) - c, axis=1)
    return float(r.min() / r.max()), c * step, float(r.mean() * step)


def is_body_of_revolution(sdf, lo: np.ndarray, hi: np.ndarray) -> bool:
    """True when, along some axis, the middle cross-sections are round and share a straight axis."""
    for axis in range(3):
        ext = hi[axis] - lo[axis]
        stats = [slice_roundness(sdf, lo, hi, axis, lo[axis] + ext * f) for f in np.linspace(0.2, 0.8, _SLICES)]
        stats = [s for s in stats if s is not None]
        if len(stats) < 3:
            continue
        roundness = np.median([s[0] for s in stats])
        centres = np.array([s[1] for s in stats])
        radius = np.mean([s[2] for s in stats])
        drift = np.max(np.linalg.norm(centres - centres.mean(0), axis=1))
        if roundness >= ROUND_MIN and drift <= AXIS_DRIFT * radius:
            return True
    return False


def compute_attributes(sdf, lo: np.ndarray, hi: np.ndarray) -> dict:
    """{"round", "long", "thin"} booleans plus the measured extents, for the object inside [lo, hi]
    (a tight box in the object's own frame, e.g. its mesh bounds)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    a, b, c = sorted(hi - lo, reverse=True)
    long_ = bool(a / b >= LONG_RATIO)
    thin = bool(long_ and b <= THIN_WIDTH)
    round_ = bool(not thin and is_body_of_revolution(sdf, lo, hi))
    return {"round": round_, "long": long_, "thin": thin, "extents": [float(a), float(b), float(c)]}
