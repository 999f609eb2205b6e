"""The 3D branch's renders cached for training and the benchmark: made once, the same with worker
processes as without, and the very view the pipeline gives the VLM."""
import json

import numpy as np
from PIL import Image

from occ_core.recon import Reconstructor
from occ_core.vlm.render_cache import render_paths, second_view


def test_recon_renders_are_cached_and_workers_agree(small_dataset, tmp_path):
    data, _ = small_dataset
    from occ_core.scenes.dataset import SceneDataset
    names = SceneDataset(data, "train", with_depth=False).names[:4]
    serial = render_paths(data, "train", names, "recon", tmp_path / "serial", progress=False, workers=1)
    parallel = render_paths(data, "train", names, "recon", tmp_path / "parallel", progress=False, workers=2)
    made = [n for n in names if serial[n] is not None]
    assert made, "the bundled 3D branch failed on every view"
    assert [n for n in names if parallel[n] is not None] == made
    failures = json.loads((tmp_path / "parallel" / "train" / "failures.json").read_text())
    assert sorted(failures) == sorted(set(names) - set(made))
    assert not list((tmp_path / "parallel" / "train").glob("*.tmp.png"))
    reconstructor = Reconstructor.from_pretrained("tiny")
    for n in made:
        a = np.asarray(Image.open(serial[n]), dtype=np.int16)
        b = np.asarray(Image.open(parallel[n]), dtype=np.int16)
        assert a.shape == b.shape and np.abs(a - b).mean() < 2.0  # 1 thread vs several: float noise only
        with Image.open(data / "ref" / "rgb" / f"{n}.jpg") as im:
            direct = np.asarray(second_view(reconstructor.reconstruct(im.convert("RGB"))), dtype=np.int16)
        assert np.abs(direct - a).mean() < 2.0
        assert (a < 245).any(-1).mean() > 0.05  # an object, framed, not a blank image
    # a second call reuses the files
    stamps = {n: parallel[n].stat().st_mtime_ns for n in made}
    again = render_paths(data, "train", names, "recon", tmp_path / "parallel", progress=False, workers=2)
    assert {n: again[n].stat().st_mtime_ns for n in made} == stamps
