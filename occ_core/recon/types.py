"""The 3D branch's output: a plain dataclass, like trimesh's data objects."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh
from PIL import Image


@dataclass
class Reconstruction:
    """What ``Reconstructor.reconstruct(image)`` returns for one hand-object image."""

    mesh: trimesh.Trimesh          # object mesh, camera frame of the input view, vertex colours
    render: Image.Image            # the object alone (no hand), rendered from the input camera
    canonical_render: Image.Image  # the object alone from a fixed canonical view
    joints_3d: np.ndarray          # (21, 3) predicted hand joints, camera frame, metres
    joints_2d: np.ndarray          # (21, 2) their projections, pixels of the input image
    hand_mask: np.ndarray          # (H, W) bool, predicted
    object_mask: np.ndarray        # (H, W) bool, predicted visible object
    occlusion_ratio: float         # estimated 1 - visible / amodal object pixels
    timings: dict = field(default_factory=dict)  # seconds per stage
    center: np.ndarray | None = None  # predicted object centre, normalised camera frame (the mesh's frame)
    amodal_mask: np.ndarray | None = None  # (H, W) bool, predicted whole object, hidden part included
    object_view: Image.Image | None = None  # ``render`` framed on the object (occ_core.object_view): the VLM's v2 input
