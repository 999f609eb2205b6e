"""Read a scenes data set (ours, or a SOMVideo export) as a torch ``Dataset`` of views.

Our data sets have everything (see ``layout``). A SOMVideo export (``SOMVideo_ref/`` and
``SOMVideo_sup/``, or ``ref/`` and ``sup/``) has occlusion-free views with object masks in the red
channel and pickled meta: those pickles are read only with ``trust_pickle=True``, since unpickling
runs arbitrary code from the file.
"""
from __future__ import annotations

import json
import pickle
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from occ_core.errors import DatasetError
from occ_core.scenes.layout import DEPTH_UNIT, FORMAT_NAME, SEGM_VALUE


def _resolve(root: Path) -> tuple[Path, Path]:
    for ref, sup in (("ref", "sup"), ("SOMVideo_ref", "SOMVideo_sup")):
        if (root / sup).is_dir():
            return root / ref, root / sup
    raise DatasetError(f"{root} is not a scenes data set: it has no sup/ (or SOMVideo_sup/) folder; "
                       "make one with `python -m occ_core data generate --out DIR`")


def pooled_cache_folder(root: str | Path, index: int, data: str | Path) -> Path:
    """Where the index-th of several pooled data sets keeps what is derived from it (training
    targets, renders): the first uses ``root`` itself, each other one a sub-folder of its own, as
    view names repeat across data sets."""
    return Path(root) if index == 0 else Path(root) / f"data{index}-{Path(data).name}"


class SceneDataset(torch.utils.data.Dataset):
    """One item per view of a split: a dict with ``id``, ``image`` (occluded RGB, H×W×3 uint8, or None
    when the export has no hand-object image for that view), ``occlusion_free``, masks
    (``amodal_mask``; ``visible_mask`` and ``hand_mask`` where known), ``depth`` (metres), ``meta``
    (camera, joints, occlusion ratio, category, attributes; None when unknown) and ``conversations``."""

    def __init__(self, root: str | Path, split: str = "train", trust_pickle: bool = False, with_depth: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"data set folder {self.root} does not exist")
        self.ref, self.sup = _resolve(self.root)
        self.split, self.trust_pickle, self.with_depth = split, trust_pickle, with_depth
        rgb_dir = self.sup / split / "rgb"
        if not rgb_dir.is_dir():
            have = sorted(p.name for p in self.sup.iterdir() if p.is_dir())
            raise DatasetError(f"{self.root} has no split {split!r} (splits: {', '.join(have) or 'none'})")
        self.names = sorted(p.stem for p in rgb_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        if not self.names:
            raise DatasetError(f"{rgb_dir} holds no images")
        info = self.root / "dataset.json"
        self.info = json.loads(info.read_text()) if info.exists() else None
        self.native = bool(self.info and self.info.get("format") == FORMAT_NAME)
        self.conversations = {}
        ann = self.root / "annotations" / f"{split}.jsonl"
        if ann.exists():
            for line_no, line in enumerate(ann.read_text().splitlines(), 1):
                try:
                    rec = json.loads(line)
                    self.conversations[rec["id"]] = rec["conversations"]
                except (json.JSONDecodeError, KeyError) as exc:
                    raise DatasetError(f"{ann}:{line_no} is not a valid annotation record ({exc})") from None
        self._warned_pickle = False

    def __len__(self) -> int:
        return len(self.names)

    def _image(self, path: Path) -> np.ndarray | None:
        if not path.exists():
            return None
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise DatasetError(f"cannot read image {path}: {exc}") from None

    def _meta(self, name: str) -> dict | None:
        meta_dir = self.sup / self.split / "meta"
        js, pk = meta_dir / f"{name}.json", meta_dir / f"{name}.pkl"
        if js.exists():
            try:
                return json.loads(js.read_text())
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{js} is not valid JSON ({exc})") from None
        if pk.exists():
            if not self.trust_pickle:
                if not self._warned_pickle:
                    warnings.warn(f"{meta_dir} holds pickle meta files; they are not read unless you pass "
                                  "--trust-pickle (unpickling runs code from the file)", stacklevel=2)
                    self._warned_pickle = True
                return None
            with open(pk, "rb") as f:
                return pickle.load(f)  # noqa: S301 — the user vouched for these files with --trust-pickle
        return None

    def __getitem__(self, i: int) -> dict:
        name = self.names[i]
        sup = self.sup / self.split
        occlusion_free = self._image(sup / "rgb" / f"{name}.jpg")
        if occlusion_free is None:
            occlusion_free = self._image(sup / "rgb" / f"{name}.png")
        item = {"id": name, "image": self._image(self.ref / "rgb" / f"{name}.jpg"), "occlusion_free": occlusion_free,
                "meta": self._meta(name), "conversations": self.conversations.get(name)}
        segm = self._image(sup / "segm" / f"{name}.png")
        if segm is not None:
            item["amodal_mask"] = segm[..., 0] == SEGM_VALUE
            if self.native:
                item["visible_mask"] = segm[..., 1] == SEGM_VALUE
                item["hand_mask"] = segm[..., 2] == SEGM_VALUE
        depth = sup / "depth" / f"{name}.png"
        if self.with_depth and depth.exists():
            with Image.open(depth) as im:
                item["depth"] = np.asarray(im, dtype=np.float32) * DEPTH_UNIT
        return item

    def scene_id(self, i: int) -> str:
        return self.names[i].rsplit("_", 1)[0]

    def ground_truth(self, scene_id: str) -> dict:
        """The scene's 3D ground truth (``gt3d/<id>.json``): exact SDF as a ``Shape``, hand, radius…"""
        return _load_gt(str(self.root / "gt3d" / f"{scene_id}.json"))


@lru_cache(maxsize=256)
def _load_gt(path: str) -> dict:
    from occ_core.scenes.hand import Hand
    from occ_core.scenes.sdf import Shape
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"no 3D ground truth at {p}")
    gt = json.loads(p.read_text())
    gt["shape"] = Shape.from_dict(gt["shape"])
    gt["hand"] = Hand.from_dict(gt["hand"])
    return gt
