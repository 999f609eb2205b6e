"""The bundled tiny CLIP reward means something: on freshly generated scenes (not its training
data) the right answer earns more than a wrong one, and it loads the way a real preset would."""
import numpy as np
import pytest
from PIL import Image

from occ_core.evaluate import SYNONYMS
from occ_core.reward import TINY_CLIP_DIR, ClipReward, load_reward
from occ_core.scenes.dataset import SceneDataset
from occ_core.text import INSTRUCTIONS, category_answer, yes_no


@pytest.fixture(scope="module")
def reward():
    return ClipReward.from_pretrained("tiny")


@pytest.fixture(scope="module")
def views(small_dataset):
    out = []
    for split in ("train", "val", "test"):
        ds = SceneDataset(small_dataset[0], split, with_depth=False)
        for i in range(len(ds)):
            item = ds[i]
            out.append((Image.fromarray(item["image"]), Image.fromarray(item["occlusion_free"]),
                        item["meta"]["category"], item["meta"]["attributes"]))
    return out


def test_bundle_is_small_safetensors_and_json():
    files = {p.name: p.stat().st_size for p in TINY_CLIP_DIR.iterdir()}
    assert set(files) == {"config.json", "model.safetensors"}
    assert sum(files.values()) <= 20 * 2**20


def test_right_category_beats_wrong_ones(reward, views):
    wins, margins = [], []
    for photo, free, category, _ in views:
        answers = [category_answer(c) for c in SYNONYMS]
        r = reward.rewards(INSTRUCTIONS["category"], answers, [photo, free]).numpy()
        right = r[list(SYNONYMS).index(category)]
        wrong = np.delete(r, list(SYNONYMS).index(category))
        wins.append(right > np.median(wrong))
        margins.append(right - wrong.mean())
    assert np.mean(wins) >= 0.75 and np.mean(margins) > 0, (np.mean(wins), np.mean(margins))


def test_right_yes_no_beats_the_wrong_one(reward, views):
    wins = []
    for photo, free, _, attributes in views:
        for attr in ("round", "long", "thin"):
            truth = bool(attributes[attr])
            r = reward.rewards(INSTRUCTIONS[attr], [yes_no(truth), yes_no(not truth)], [photo, free]).numpy()
            assert abs(r.sum() - 2.5) < 1e-4  # the pair is a softmax: the two answers share 2.5
            wins.append(r[0] > r[1])
    assert np.mean(wins) >= 0.7, np.mean(wins)


def test_unparseable_answer_earns_nothing_and_reward_is_cached_per_process(reward, views):
    photo = views[0][0]
    assert float(reward.rewards(INSTRUCTIONS["round"], ["perhaps"], [photo])[0]) == 0.0
    assert load_reward("tiny") is load_reward("tiny")
