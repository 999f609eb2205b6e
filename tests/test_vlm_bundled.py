"""The bundled tiny VLM: it loads by preset name and answers a freshly generated test set (a seed
never used for training) above an accuracy floor. Floors: the values measured when the checkpoint
was bundled (see assets/checkpoints/tiny/vlm/benchmark.md) minus a margin for this small sample. These are regression floors: the
bundled model is below the project's acceptance target (see README)."""
import pytest
import torch

from occ_core import evaluate as ev
from occ_core.object_view import crop_to_object
from occ_core.presets import PRESETS
from occ_core.scenes.builder import generate_dataset, parse_splits
from occ_core.scenes.dataset import SceneDataset
from occ_core.text import INSTRUCTIONS
from occ_core.vlm import load_vlm
from pathlib import Path

# measured on this 60-view set when bundled: α=1 category 0.267, round 0.900, long 0.767, thin 0.783
# (on 200 fresh test views the photo-only category is 0.405: this small set is a hard draw for it);
# α=0.5 (ground-truth render framed on the object) 0.683, 0.983, 0.900, 0.850. Floors ≈ 0.1 lower
# (60 views: SE ≈ 0.06).
FLOORS = {1.0: {"category": 0.17, "round": 0.80, "long": 0.67, "thin": 0.68},
          0.5: {"category": 0.58, "round": 0.88, "long": 0.80, "thin": 0.75}}

pytestmark = pytest.mark.skipif(not (Path(PRESETS["tiny"].vlm) / "model.safetensors").exists(),
                                reason="the tiny VLM is not bundled in this checkout")


@pytest.fixture(scope="module")
def fresh_views(tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh") / "scenes"
    generate_dataset(out, scenes=30, views=2, size=128, seed=777_001, workers=2, splits=parse_splits("test=1.0"),
                     progress=False)
    ds = SceneDataset(out, "test", with_depth=False)
    return [ds[i] for i in range(len(ds))]


def accuracy(task: str, answers: list[str], views) -> float:
    """Share of ``answers`` to ``task``'s instruction that the benchmark's scoring counts right."""
    truth = [v["meta"]["category"] if task == "category" else v["meta"]["attributes"][task] for v in views]
    return sum(ev.is_correct(task, a, t) for a, t in zip(answers, truth)) / len(truth)


@pytest.mark.parametrize("alpha", sorted(FLOORS))
def test_bundled_tiny_reaches_the_accuracy_floor(fresh_views, alpha):
    torch.set_num_threads(1)
    vlm = load_vlm("tiny")
    photos = [v["image"] for v in fresh_views]
    # the ground-truth render framed on the object stands in for the 3D branch's second view
    renders = [crop_to_object(v["occlusion_free"], v["amodal_mask"]) for v in fresh_views]
    for task, floor in FLOORS[alpha].items():
        answers = vlm.answer(photos, [INSTRUCTIONS[task]] * len(photos), renders, alpha=alpha, max_new_tokens=12)
        acc = accuracy(task, answers, fresh_views)
        assert acc >= floor, f"α={alpha} {task}: {acc:.3f} < floor {floor}"


# the app's path: the whole bundled pipeline (3D branch → its render framed on the object → v2) at
# the bundled default α (0.75), on the same 60 views. Measured when bundled: category 0.450, round
# 0.967, long 0.867, thin 0.833; floors ≈ 0.1 lower.
PIPELINE_FLOORS = {"category": 0.35, "round": 0.87, "long": 0.77, "thin": 0.73}


def test_bundled_pipeline_reaches_the_accuracy_floor_with_its_own_3d_branch(fresh_views):
    from occ_core.pipeline import OccPipeline
    torch.set_num_threads(1)
    pipe = OccPipeline.from_pretrained("tiny")
    for task, floor in PIPELINE_FLOORS.items():
        acc = accuracy(task, [pipe.answer(v["image"], INSTRUCTIONS[task], max_new_tokens=12).text for v in fresh_views],
                       fresh_views)
        assert acc >= floor, f"pipeline {task}: {acc:.3f} < floor {floor}"
    assert pipe.stats["reconstructions"] == len(fresh_views)  # one per image, reused by the other questions
