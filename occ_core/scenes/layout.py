"""The on-disk format: SOMVideo's tree plus JSON meta, LLaVA-style JSONL and 3D ground truth.

```
DIR/
  dataset.json                         format name and version, generator settings, counts per split
  ref/rgb/<id>_<view>.jpg              occluded hand-object RGB (SOMVideo keeps view 000 only here)
  sup/<split>/rgb/<id>_<view>.jpg      occlusion-free RGB of the object alone, same camera
  sup/<split>/segm/<id>_<view>.png     masks, 100 where set: red = amodal object (SOMVideo's
                                       convention), green = visible object, blue = hand
  sup/<split>/depth/<id>_<view>.png    16-bit depth of the occluded view, in units of 0.1 mm (0: none)
  sup/<split>/meta/<id>_<view>.json    camera (K, world→camera), occlusion ratio, joints 2D / 3D,
                                       category, attributes
  annotations/<split>.jsonl            one record per view: {"id", "image", "conversations": [...]}
  gt3d/<id>.json                       exact object SDF (primitives), hand, attributes, normalisation
  gt3d/<id>.ply                        watertight object mesh with vertex colours
```
The world frame of a scene is the object's frame, centred on its bounding box; "object-normalised"
coordinates divide by ``gt3d[...]["radius"]`` (half the bounding-box diagonal).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from occ_core.scenes.generate import Scene, View
from occ_core.text import conversations

FORMAT_NAME = "occ-mllm-scenes"
FORMAT_VERSION = 1
SEGM_VALUE = 100
DEPTH_UNIT = 1e-4  # metres per depth-PNG step
JPEG_QUALITY = 95


def view_name(scene_id: str, view: int) -> str:
    return f"{scene_id}_{view:03d}"


def view_paths(root: Path, split: str, name: str) -> dict:
    sup = root / "sup" / split
    return {"occluded": root / "ref" / "rgb" / f"{name}.jpg", "occlusion_free": sup / "rgb" / f"{name}.jpg",
            "segm": sup / "segm" / f"{name}.png", "depth": sup / "depth" / f"{name}.png",
            "meta": sup / "meta" / f"{name}.json"}


def make_dirs(root: Path, splits) -> None:
    for sub in ("ref/rgb", "annotations", "gt3d"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for split in splits:
        for kind in ("rgb", "segm", "depth", "meta"):
            (root / "sup" / split / kind).mkdir(parents=True, exist_ok=True)


def _dump(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True))


def encode_segm(view: View) -> np.ndarray:
    segm = np.zeros(view.amodal_mask.shape + (3,), np.uint8)
    segm[..., 0] = view.amodal_mask * SEGM_VALUE
    segm[..., 1] = view.visible_mask * SEGM_VALUE
    segm[..., 2] = view.hand_mask * SEGM_VALUE
    return segm


def write_scene(root: Path, split: str, scene: Scene, views: list[View]) -> list[dict]:
    """Write a scene's files; return its JSONL annotation records (one per view)."""
    gt = {"scene_id": scene.scene_id, "category": scene.category, "attributes": scene.attributes,
          "color": scene.color, "shape": scene.shape.to_dict(), "hand": scene.hand.to_dict(),
          "bounds": scene.mesh.bounds.tolist(), "center": scene.center.tolist(), "radius": scene.radius,
          "split": split}
    _dump(gt, root / "gt3d" / f"{scene.scene_id}.json")
    scene.mesh.export(root / "gt3d" / f"{scene.scene_id}.ply")
    records = []
    for v_i, view in enumerate(views):
        name = view_name(scene.scene_id, v_i)
        paths = view_paths(root, split, name)
        Image.fromarray(view.occluded).save(paths["occluded"], quality=JPEG_QUALITY)
        Image.fromarray(view.occlusion_free).save(paths["occlusion_free"], quality=JPEG_QUALITY)
        Image.fromarray(encode_segm(view)).save(paths["segm"])
        depth = np.clip(np.rint(view.depth / DEPTH_UNIT), 0, 65535).astype(np.uint16)
        Image.fromarray(depth).save(paths["depth"])
        meta = {"scene_id": scene.scene_id, "view": v_i, "split": split, "camera": view.camera.to_dict(),
                "occlusion_ratio": view.occlusion_ratio, "joints_2d": view.joints_2d.tolist(),
                "joints_3d_cam": view.joints_3d_cam.tolist(), "category": scene.category,
                "attributes": {k: scene.attributes[k] for k in ("round", "long", "thin")}}
        _dump(meta, paths["meta"])
        records.append({"id": name, "image": f"ref/rgb/{name}.jpg",
                        "conversations": conversations(scene.category, scene.attributes, scene.color)})
    return records
