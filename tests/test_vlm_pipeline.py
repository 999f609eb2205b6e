"""OccPipeline: components from a folder, the reconstruction cache, and the α = 1 fallback."""
import pytest
import torch
from PIL import Image

from occ_core.errors import OccError
from occ_core.pipeline import OccPipeline
from occ_core.scenes.dataset import SceneDataset
from occ_core.text import INSTRUCTIONS
from occ_core.vlm.tiny import random_tiny_vlm, train_tokenizer
from vlm_helpers import OcclusionFreeLookup, corpus


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("vlm")
    random_tiny_vlm(train_tokenizer(corpus()), seed=5).save_pretrained(path)
    return path


@pytest.fixture
def pipe_and_data(model_dir, small_dataset):
    ds = SceneDataset(small_dataset[0], "train")
    lookup = OcclusionFreeLookup(ds)
    return OccPipeline.from_pretrained(str(model_dir), reconstructor=lookup), lookup, ds


def test_new_alpha_or_question_reuses_the_reconstruction(pipe_and_data):
    pipe, lookup, ds = pipe_and_data
    photo = Image.fromarray(ds[0]["image"])
    first = pipe.answer(photo, INSTRUCTIONS["category"], alpha=0.5, num_beams=2, max_new_tokens=4)
    assert lookup.calls == 1 and not first.fallback and first.reconstruction is not None
    pipe.answer(photo, INSTRUCTIONS["round"], alpha=0.5, num_beams=2, max_new_tokens=4)
    pipe.answer(photo, INSTRUCTIONS["round"], alpha=0.2, num_beams=2, max_new_tokens=4)
    pipe.answer(ds[0]["image"].copy(), INSTRUCTIONS["long"], alpha=0.0, max_new_tokens=4)  # same pixels, new object
    assert lookup.calls == 1 and pipe.stats["reconstructions"] == 1 and pipe.stats["cache_hits"] >= 3
    assert pipe.reconstruct(photo) is first.reconstruction
    pipe.answer(Image.fromarray(ds[1]["image"]), INSTRUCTIONS["long"], alpha=0.5, max_new_tokens=4)
    assert lookup.calls == 2


def test_alpha_one_never_reconstructs(pipe_and_data):
    pipe, lookup, ds = pipe_and_data
    out = pipe.answer(Image.fromarray(ds[2]["image"]), INSTRUCTIONS["thin"], alpha=1.0, max_new_tokens=4)
    assert lookup.calls == 0 and out.alpha == 1.0 and not out.fallback


def test_failed_reconstruction_falls_back_to_the_photo_and_says_so(pipe_and_data):
    pipe, lookup, ds = pipe_and_data
    unknown = Image.fromarray(255 - ds[0]["image"])  # the stand-in 3D branch fails on it
    out = pipe.answer(unknown, INSTRUCTIONS["category"], alpha=0.3, max_new_tokens=4)
    assert out.fallback and out.alpha == 1.0 and out.requested_alpha == 0.3 and "α = 1" in out.note
    photo_only = pipe.answer(unknown, INSTRUCTIONS["category"], alpha=1.0, max_new_tokens=4)
    assert out.text == photo_only.text  # exactly the photo-only answer
    pipe.answer(unknown, INSTRUCTIONS["round"], alpha=0.3, max_new_tokens=4)
    assert lookup.calls == 1  # the failure is cached too


def test_chat_continues_a_conversation_and_checks_alpha(pipe_and_data):
    pipe, _, ds = pipe_and_data
    photo = Image.fromarray(ds[3]["image"])
    first = pipe.chat(photo, [], INSTRUCTIONS["category"], alpha=0.5, max_new_tokens=4)
    second = pipe.chat(photo, [(INSTRUCTIONS["category"], first.text)], INSTRUCTIONS["long"], alpha=0.5, max_new_tokens=4)
    assert isinstance(second.text, str)
    with pytest.raises(OccError):
        pipe.answer(photo, "?", alpha=1.5)
