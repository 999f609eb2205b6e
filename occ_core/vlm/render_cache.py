"""The "render" view of each image (v2's input), made once and kept on disk.

``recon``: the stage-2 model's reconstruction rendered without the hand, cached as PNG under
``cache_dir/<split>/<id>.png`` (failures are remembered in ``failures.json`` and mean α = 1).
``occlusion-free``: the data set's ground-truth image of the object alone (``sup/<split>/rgb``), an
upper bound of what a perfect 3D branch could give; for developing while the 3D branch is missing."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from occ_core.errors import OccError, ReconstructionError

RENDER_SOURCES = ("recon", "occlusion-free")


def render_paths(data_root: str | Path, split: str, names: list[str], source: str, cache_dir: str | Path | None = None,
                 recon_preset: str = "tiny", progress: bool = True) -> dict[str, Path | None]:
    """Path of each view's render (None where the reconstruction failed)."""
    root = Path(data_root)
    if source == "occlusion-free":
        return {n: root / "sup" / split / "rgb" / f"{n}.jpg" for n in names}
    if source != "recon":
        raise OccError(f"unknown render source {source!r}: use one of {', '.join(RENDER_SOURCES)}")
    if cache_dir is None:
        raise OccError("the recon render source needs a cache folder")
    folder = Path(cache_dir) / split
    folder.mkdir(parents=True, exist_ok=True)
    failures_file = folder / "failures.json"
    failures = set(json.loads(failures_file.read_text())) if failures_file.exists() else set()
    todo = [n for n in names if n not in failures and not (folder / f"{n}.png").exists()]
    if todo:
        try:
            from occ_core.recon import Reconstructor
        except ImportError:
            raise OccError("the 3D branch (occ_core.recon.Reconstructor) is not available yet; "
                           "use --render-source occlusion-free") from None
        reconstructor = Reconstructor.from_pretrained(recon_preset)
        from tqdm import tqdm
        for n in tqdm(todo, desc=f"3D renders ({split})", disable=not progress):
            with Image.open(root / "ref" / "rgb" / f"{n}.jpg") as im:
                image = im.convert("RGB")
            try:
                reconstructor.reconstruct(image).render.convert("RGB").save(folder / f"{n}.png")
            except ReconstructionError:
                failures.add(n)
        failures_file.write_text(json.dumps(sorted(failures)))
    return {n: (None if n in failures else folder / f"{n}.png") for n in names}
