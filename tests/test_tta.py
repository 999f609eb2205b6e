"""Test-time adaptation: weights never change (also when a step fails), concurrent requests give
the serial answers, seeded runs repeat, and the interface the app calls."""
import threading

import pytest
import torch
from PIL import Image

from occ_core.errors import OccError
from occ_core.pipeline import OccPipeline
from occ_core.reward import ClipReward
from occ_core.scenes.dataset import SceneDataset
from occ_core.text import INSTRUCTIONS
from occ_core.tta import TTAConfig, adapt_and_answer, model_lock
from occ_core.vlm.tiny import random_tiny_vlm, train_tokenizer
from vlm_helpers import OcclusionFreeLookup, corpus

FAST = TTAConfig(steps=2, k=4, lr=5e-2, sample_max_new_tokens=6)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("vlm")
    random_tiny_vlm(train_tokenizer(corpus()), seed=7).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def reward():
    return ClipReward.from_pretrained("tiny")


@pytest.fixture
def setup(model_dir, small_dataset):
    ds = SceneDataset(small_dataset[0], "train")
    pipe = OccPipeline.from_pretrained(str(model_dir), reconstructor=OcclusionFreeLookup(ds))
    photos = [Image.fromarray(ds[i]["image"]) for i in range(3)]
    return pipe, photos


def weights(pipe):
    return {k: v.detach().clone() for k, v in pipe.vlm.model.state_dict().items()}


def assert_same(before, pipe):
    after = pipe.vlm.model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k  # byte-identical
    assert all(p.grad is None for p in pipe.vlm.model.parameters())


@pytest.mark.parametrize("target", ["projector", "lora"])
def test_weights_identical_after_adaptation(setup, reward, target):
    pipe, photos = setup
    before = weights(pipe)
    config = TTAConfig(steps=3, k=4, lr=0.5, target=target, sample_max_new_tokens=6)
    out = adapt_and_answer(pipe, photos[0], INSTRUCTIONS["category"], alpha=0.5, config=config, num_beams=2,
                           max_new_tokens=6, reward=reward)
    assert_same(before, pipe)
    assert isinstance(out.answer, str) and isinstance(out.baseline, str) and out.seconds > 0
    assert [s["step"] for s in out.trace] == [0, 1, 2] and out.reward_source == "both"
    assert all(len(s["samples"]) == 4 and all(len(x) == 2 for x in s["samples"]) for s in out.trace)
    # the beam answer before adaptation is the plain pipeline answer
    assert out.baseline == pipe.answer(photos[0], INSTRUCTIONS["category"], 0.5, num_beams=2, max_new_tokens=6).text


class RewardFailingOnSecondStep(ClipReward):
    """The bundled reward model, made to fail on its second call (failure injection)."""

    def __init__(self, inner: ClipReward):
        super().__init__(inner.model, inner.preprocess, inner.tokenizer, inner.name)
        self.calls = 0

    def caption_rewards(self, captions, image_emb):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("reward server went away")
        return super().caption_rewards(captions, image_emb)


@pytest.mark.parametrize("target", ["projector", "lora"])
def test_weights_identical_and_lock_released_when_a_step_raises(setup, reward, target):
    pipe, photos = setup
    before = weights(pipe)
    failing = RewardFailingOnSecondStep(reward)
    with pytest.raises(RuntimeError, match="went away"):
        adapt_and_answer(pipe, photos[1], INSTRUCTIONS["round"], alpha=0.5, config=TTAConfig(steps=3, k=4, lr=0.5, target=target,
                         sample_max_new_tokens=6), num_beams=2, max_new_tokens=6, reward=failing)
    assert failing.calls == 2
    assert_same(before, pipe)
    assert not model_lock(pipe.vlm.model).locked()
    adapt_and_answer(pipe, photos[1], INSTRUCTIONS["round"], config=FAST, num_beams=2, max_new_tokens=6, reward=reward)


def test_seeded_runs_repeat_and_the_caller_rng_is_untouched(setup, reward):
    pipe, photos = setup
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = adapt_and_answer(pipe, photos[0], INSTRUCTIONS["long"], config=FAST, num_beams=2, max_new_tokens=6, reward=reward)
    assert torch.equal(torch.get_rng_state(), state)
    b = adapt_and_answer(pipe, photos[0], INSTRUCTIONS["long"], config=FAST, num_beams=2, max_new_tokens=6, reward=reward)
    assert (a.answer, a.trace) == (b.answer, b.trace)


def test_two_threads_get_the_serial_answers(setup, reward):
    pipe, photos = setup
    jobs = [(photos[0], INSTRUCTIONS["category"]), (photos[2], INSTRUCTIONS["thin"])]
    serial = [adapt_and_answer(pipe, im, q, config=FAST, num_beams=2, max_new_tokens=6, reward=reward) for im, q in jobs]
    before = weights(pipe)
    results: dict = {}
    plain: list = []

    def work(i):
        results[i] = adapt_and_answer(pipe, *jobs[i], config=FAST, num_beams=2, max_new_tokens=6, reward=reward)

    def answer_plainly():  # a plain request running meanwhile never sees adapted weights
        for _ in range(3):
            plain.append(pipe.answer(photos[0], INSTRUCTIONS["category"], num_beams=2, max_new_tokens=6).text)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)] + [threading.Thread(target=answer_plainly)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert (results[i].answer, results[i].baseline, results[i].trace) == (serial[i].answer, serial[i].baseline, serial[i].trace)
    assert set(plain) == {serial[0].baseline}
    assert_same(before, pipe)


def test_bad_settings_are_user_errors(setup, reward):
    pipe, photos = setup
    with pytest.raises(OccError, match="target"):
        TTAConfig(target="everything")
    with pytest.raises(OccError, match="reward source"):
        adapt_and_answer(pipe, photos[0], INSTRUCTIONS["round"], config=TTAConfig(reward_source="sound"), reward=reward)
    with pytest.raises(OccError, match="α"):
        adapt_and_answer(pipe, photos[0], INSTRUCTIONS["round"], alpha=1.5, reward=reward)


def test_failed_reconstruction_scores_against_the_photo_and_says_so(setup, reward):
    pipe, photos = setup
    unknown = Image.fromarray(255 - __import__("numpy").asarray(photos[0]))
    out = adapt_and_answer(pipe, unknown, INSTRUCTIONS["round"], alpha=0.5, config=FAST, num_beams=2, max_new_tokens=6, reward=reward)
    assert out.reward_source == "image" and out.alpha == 1.0 and "α = 1" in out.note


def test_reinforce_step_shares_forward_passes_without_changing_the_gradient(setup):
    from occ_core.tta import policy_view, reinforce_step, sequence_nll
    pipe, photos = setup
    vlm = pipe.vlm
    features, _ = pipe.features(photos[0], 1.0)
    prompt = vlm.prompt_ids(INSTRUCTIONS["category"])
    torch.manual_seed(0)
    samples = vlm.sample(features, prompt, 4, max_new_tokens=5)
    # make two rows identical so that the grouping matters
    samples.sequences[1], samples.mask[1] = samples.sequences[0], samples.mask[0]
    advantage = torch.tensor([0.5, -1.0, 0.2, 0.3])
    updated = []
    for grouped in (True, False):
        view, params = policy_view(vlm, TTAConfig())
        opt = torch.optim.SGD(params, lr=1.0)
        if grouped:
            reinforce_step(view, features, prompt, samples, advantage, params, opt)
        else:
            with torch.enable_grad():
                loss = (advantage * sequence_nll(view, features, prompt, samples.sequences, samples.mask)).mean()
                for p, g in zip(params, torch.autograd.grad(loss, params)):
                    p.grad = g
            opt.step()
        updated.append([p.detach().clone() for p in params])
    for a, b in zip(*updated):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("target", ["projector", "lora"])
def test_shared_prompt_nll_matches_the_models_token_logprobs(setup, target):
    from occ_core.tta import policy_view, sequence_nll
    pipe, photos = setup
    vlm = pipe.vlm
    features, _ = pipe.features(photos[1], 1.0)
    prompt = vlm.prompt_ids(INSTRUCTIONS["round"])
    torch.manual_seed(1)
    samples = vlm.sample(features, prompt, 5, max_new_tokens=6)
    view, _ = policy_view(vlm, TTAConfig(target=target))
    reference = -view.token_logprobs(features, prompt, samples.sequences).sum(1) / samples.mask.sum(1).clamp(min=1)
    assert torch.allclose(sequence_nll(view, features, prompt, samples.sequences, samples.mask), reference, atol=1e-5)
