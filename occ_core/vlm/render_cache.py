"""The "render" view of each image (v2's input), made once and kept on disk, framed on the object
(``occ_core.object_view``) as the VLM sees it.

``recon``: the stage-2 model's reconstruction rendered without the hand, cached as PNG under
``cache_dir/<split>/<id>.png`` (failures are remembered in ``failures.json`` and mean α = 1).
``occlusion-free``: the data set's ground-truth image of the object alone (``sup/<split>/rgb``),
framed with the true amodal mask and cached under ``cache_dir/occlusion-free/<split>/``: an upper
bound of what a perfect 3D branch could give."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from occ_core.errors import OccError, ReconstructionError

RENDER_SOURCES = ("recon", "occlusion-free")


def render_paths(data_root: str | Path, split: str, names: list[str], source: str, cache_dir: str | Path | None = None,
                 recon_preset: str = "tiny", progress: bool = True, workers: int = 1,
                 resolution: int | None = None) -> dict[str, Path | None]:
    """Path of each view's render (None where the reconstruction failed). ``workers`` > 1 reconstructs
    in that many processes of one torch thread each (the per-point decoder is too small to keep
    several threads of one process busy). ``resolution``: the 3D branch's SDF grid (default: its
    own, 64³, as the app runs it); other grids are cached apart, under ``res<N>/``."""
    root = Path(data_root)
    if source not in RENDER_SOURCES:
        raise OccError(f"unknown render source {source!r}: use one of {', '.join(RENDER_SOURCES)}")
    if cache_dir is None:
        raise OccError(f"the {source} render source needs a cache folder")
    if source == "occlusion-free":
        return _framed_ground_truth(root, split, names, Path(cache_dir) / "occlusion-free" / split)
    folder = Path(cache_dir) / (f"res{resolution}" if resolution else "") / split
    folder.mkdir(parents=True, exist_ok=True)
    failures_file = folder / "failures.json"
    failures = set(json.loads(failures_file.read_text())) if failures_file.exists() else set()
    todo = [n for n in names if n not in failures and not (folder / f"{n}.png").exists()]
    if todo:
        from tqdm import tqdm
        jobs = [(root / "ref" / "rgb" / f"{n}.jpg", folder / f"{n}.png") for n in todo]
        _init_render_worker(recon_preset, None, resolution)  # here first: a missing 3D branch fails once, clearly
        bar = tqdm(total=len(todo), desc=f"3D renders ({split})", disable=not progress)
        pool = None
        try:
            if workers <= 1 or len(todo) < 2:
                results = map(_render_one, jobs)
            else:  # spawn: each process makes its own torch threads and EGL context
                import multiprocessing as mp
                pool = mp.get_context("spawn").Pool(min(workers, len(todo)), _init_render_worker, (recon_preset, 1, resolution))
                results = pool.imap_unordered(_render_one, jobs, chunksize=4)
            for path, ok in results:
                if not ok:
                    failures.add(path.stem)
                bar.update(1)
        finally:
            bar.close()
            if pool is not None:
                pool.terminate()
            _worker.clear()
            failures_file.write_text(json.dumps(sorted(failures)))  # what was made so far is kept either way
    return {n: (None if n in failures else folder / f"{n}.png") for n in names}


_worker: dict = {}


def _init_render_worker(recon_preset: str, threads: int | None, resolution: int | None = None) -> None:
    try:
        from occ_core.recon import Reconstructor
    except ImportError:
        raise OccError("the 3D branch (occ_core.recon.Reconstructor) is not available yet; "
                       "use --render-source occlusion-free") from None
    if threads:
        import torch
        torch.set_num_threads(threads)
    _worker["reconstructor"] = Reconstructor.from_pretrained(recon_preset, **({"resolution": resolution} if resolution else {}))


def _render_one(job: tuple[Path, Path]) -> tuple[Path, bool]:
    """Reconstruct one photo and write its framed render; False where the 3D branch failed."""
    source, target = job
    with Image.open(source) as im:
        image = im.convert("RGB")
    try:
        view = second_view(_worker["reconstructor"].reconstruct(image))
    except ReconstructionError:
        return target, False
    tmp = target.with_suffix(".tmp.png")
    view.save(tmp)
    tmp.replace(target)  # never a half-written file under the real name
    return target, True


def second_view(reconstruction) -> Image.Image:
    """What the VLM's second view sees of a ``Reconstruction``: its render framed on the object."""
    view = reconstruction.object_view if reconstruction.object_view is not None else reconstruction.render
    return view.convert("RGB")


def _framed_ground_truth(root: Path, split: str, names: list[str], folder: Path) -> dict[str, Path]:
    """The occlusion-free images framed with their true amodal masks, written once."""
    import numpy as np
    from occ_core.object_view import crop_to_object
    from occ_core.scenes.layout import SEGM_VALUE
    folder.mkdir(parents=True, exist_ok=True)
    paths = {n: folder / f"{n}.png" for n in names}
    for n, path in paths.items():
        if path.exists():
            continue
        with Image.open(root / "sup" / split / "segm" / f"{n}.png") as im:
            amodal = np.asarray(im.convert("RGB"))[..., 0] == SEGM_VALUE
        with Image.open(root / "sup" / split / "rgb" / f"{n}.jpg") as im:
            view = crop_to_object(im, amodal)
        tmp = path.with_suffix(".tmp.png")
        view.save(tmp)
        tmp.replace(path)  # never a half-written file under the real name
    return paths
