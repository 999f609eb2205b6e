"""The training commands on small generated data: several data sets pooled, outputs loadable,
a rerun resumes instead of starting over."""
import json

import numpy as np
import pytest
import torch

from occ_core.scenes.builder import generate_dataset, parse_splits


@pytest.fixture(scope="module")
def second_dataset(tmp_path_factory):
    """4 scenes × 2 views at 64 px, all train: the extra data set pooled with ``small_dataset``."""
    out = tmp_path_factory.mktemp("more") / "scenes_more"
    generate_dataset(out, scenes=4, views=2, size=64, seed=23, workers=1, splits=parse_splits("train=1.0"),
                     progress=False)
    return out


def test_train_vlm_pools_data_sets_and_resumes(small_dataset, second_dataset, tmp_path):
    from occ_core.scenes.dataset import SceneDataset
    from occ_core.vlm import load_vlm
    from occ_core.vlm.train import TrainConfig, train
    data, _ = small_dataset
    views = len(SceneDataset(data, "train").names) + len(SceneDataset(second_dataset, "train").names)
    cfg = TrainConfig(data=[str(data), str(second_dataset)], out=str(tmp_path / "vlm"), render_source="occlusion-free",
                      tower_epochs=1, tower_batch_size=8, epochs=1, batch_size=8, save_every=1)
    out = train(cfg)
    log = json.loads((out / "train_log.json").read_text())
    assert log["train_views"] == views == 20
    assert log["steps"] == 3  # ceil(20 / 8)
    probe = log["tower_probe_val"]  # the first data set's val split (2 views)
    assert set(probe) == {"photo", "render", "blend_0.5"} and all(v in (0.0, 0.5, 1.0) for v in probe.values())
    # the second data set's ground-truth renders are cached apart from the first's (names repeat)
    assert any((out / "renders" / "data1-scenes_more").rglob("*.png"))
    vlm = load_vlm(str(out))
    image = SceneDataset(data, "test")[0]["image"]
    assert isinstance(vlm.answer([image], ["What's the object in the hand?"], max_new_tokens=4)[0], str)
    before = (out / "model.safetensors").read_bytes()
    log_again = json.loads((train(cfg) / "train_log.json").read_text())  # resumes: nothing left to do
    assert log_again["steps"] == 3 and (out / "model.safetensors").read_bytes() == before


def test_train_recon_pools_data_sets(small_dataset, second_dataset, tmp_path):
    from occ_core.recon.infer import Reconstructor
    from occ_core.recon.train import train_recon
    data, _ = small_dataset
    out = tmp_path / "recon"
    result = train_recon([data, second_dataset], out, steps=3, batch_size=4, n_points=64, val_every=3, progress=False,
                         threads=1)
    assert result["steps"] == 3 and np.isfinite(list(result["val"].values())).all()
    assert (out / "targets_train.safetensors").exists()
    extra = out / "data1-scenes_more" / "targets_train.safetensors"
    assert extra.exists()
    from safetensors.torch import load_file
    n_first = load_file(str(out / "targets_train.safetensors"))["image"].shape[0]
    n_extra = load_file(str(extra))["image"].shape[0]
    assert (n_first, n_extra) == (12, 8)
    model = Reconstructor.from_pretrained(str(out)).model
    assert all(torch.isfinite(p).all() for p in model.parameters())
