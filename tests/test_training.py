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


def test_recon_share_gives_that_share_of_training_views_the_3d_branch_render(small_dataset, tmp_path):
    """``recon_share``: a seeded share of the training views get the 3D branch's render (cached at the
    coarser grid, under res32/), the others keep the framed ground truth; the photos are untouched and
    a 3D-branch render counts as all foreground (it is already on its own plain background)."""
    from occ_core.vlm import load_vlm
    from occ_core.vlm.train import TrainConfig, _load_one
    data, _ = small_dataset
    vlm = load_vlm("tiny")
    cache = tmp_path / "renders"
    plain = TrainConfig(data=str(data), out=str(tmp_path), render_source="occlusion-free")
    mixed = TrainConfig(data=str(data), out=str(tmp_path), render_source="occlusion-free", recon_share=0.5, seed=3)
    names, photo, render, have, _, labels = _load_one(vlm, plain, str(data), "train", cache)
    names2, photo2, render2, have2, _, labels2 = _load_one(vlm, mixed, str(data), "train", cache)
    assert names2 == names and torch.equal(photo2, photo) and have2.all()
    chosen = {n for n, c in zip(names, np.random.default_rng(3).random(len(names)) < 0.5) if c}
    made = {p.stem for p in (cache / "res32" / "train").glob("*.png")}
    failed = set(json.loads((cache / "res32" / "train" / "failures.json").read_text()))
    assert 0 < len(chosen) < len(names) and made | failed == chosen and made
    changed = (render2 != render).flatten(1).any(1)
    assert changed.tolist() == [n in made for n in names]
    assert (labels2["render_fg"][changed] == 1).all()
    assert torch.equal(labels2["render_fg"][~changed], labels["render_fg"][~changed])
    assert not torch.equal(labels2["render_masks"][changed], labels["render_masks"][changed])
    # the val split never mixes: the tower probe's val numbers stay comparable between runs
    val = _load_one(vlm, mixed, str(data), "val", cache)
    assert torch.equal(val[2], _load_one(vlm, plain, str(data), "val", cache)[2])
