"""Shared pieces of the VLM tests: a random tiny LLaVA and a real stand-in for the 3D branch."""
from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image

from occ_core.errors import ReconstructionError
from occ_core.pipeline import image_key
from occ_core.recon.types import Reconstruction
from occ_core.text import conversations
from occ_core.vlm.prompts import answer_segment, conversation_pairs, user_segment


def corpus() -> list[str]:
    texts = []
    for cat in ("bottle", "knife", "cellphone", "bowl", "remote", "pen"):
        for attrs in ({"round": True, "long": False, "thin": False}, {"round": False, "long": True, "thin": True}):
            for i, (q, a) in enumerate(conversation_pairs(conversations(cat, attrs, "red"))):
                texts.append(user_segment(q.replace("<image>", "").strip(), i == 0) + answer_segment(a))
    return texts * 5


class OcclusionFreeLookup:
    """Reconstructs nothing: returns the data set's ground-truth occlusion-free view of a known photo
    (what a perfect 3D branch would render) and fails with ReconstructionError on unknown images."""

    def __init__(self, dataset):
        self.items = {image_key(item["image"]): item for item in dataset}
        self.calls = 0

    def reconstruct(self, image: Image.Image) -> Reconstruction:
        self.calls += 1
        item = self.items.get(image_key(image))
        if item is None:
            raise ReconstructionError("no surface found for this image")
        render = Image.fromarray(item["occlusion_free"])
        return Reconstruction(mesh=trimesh.creation.box(extents=(0.1, 0.1, 0.1)), render=render, canonical_render=render,
                              joints_3d=np.asarray(item["meta"]["joints_3d_cam"]), joints_2d=np.asarray(item["meta"]["joints_2d"]),
                              hand_mask=item["hand_mask"], object_mask=item["visible_mask"],
                              occlusion_ratio=float(item["meta"]["occlusion_ratio"]))
