"""The dual-view LLaVA on a random tiny model: Eq. 3 at the feature level, α = 1, sampling and
differentiable log-probs, save → from_pretrained round trip, and a real preset's offline error."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from occ_core.errors import ModelNotAvailableError
from occ_core.text import INSTRUCTIONS
from occ_core.vlm import load_vlm
from occ_core.vlm.tiny import random_tiny_vlm, train_tokenizer
from vlm_helpers import corpus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vlm():
    torch.set_num_threads(1)
    return random_tiny_vlm(train_tokenizer(corpus()), seed=3)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(6)]


def test_blend_is_eq3_on_tower_features(vlm, images):
    photos, renders = images[:3], images[3:]
    v1 = vlm.tower_features(vlm.pixel_values(photos))
    v2 = vlm.tower_features(vlm.pixel_values(renders))
    assert v1.shape == (3, vlm.image_tokens, vlm.model.config.vision_config.hidden_size)
    with torch.no_grad():
        for alpha in (0.0, 0.3, 1.0):
            got = vlm.dual_features(photos, renders, alpha)
            assert torch.allclose(got, alpha * v1 + (1 - alpha) * v2, atol=1e-6)
        per_example = vlm.dual_features(photos, renders, [0.2, 0.5, 0.9])
    alphas = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1)
    assert torch.allclose(per_example, alphas * v1 + (1 - alphas) * v2, atol=1e-6)
    assert not torch.allclose(v1, v2)  # the test means something only if the views differ


def test_projected_features_sit_at_the_image_tokens(vlm, images):
    feats = vlm.dual_features(images[:2], images[2:4], 0.5)
    visual = vlm.project(feats)
    prompts = [vlm.prompt_ids(INSTRUCTIONS["category"]), vlm.prompt_ids("Is it long?")]
    embeds, mask = vlm.embed(prompts, visual)
    for row, prompt in enumerate(prompts):
        offset = embeds.shape[1] - len(prompt)  # left padding
        where = [offset + i for i, t in enumerate(prompt) if t == vlm.image_token_id]
        assert len(where) == vlm.image_tokens
        assert torch.allclose(embeds[row, where], visual[row])
        assert mask[row, :offset].sum() == 0 and mask[row, offset:].all()


def test_alpha_one_ignores_the_render(vlm, images):
    qs = [INSTRUCTIONS["category"], INSTRUCTIONS["long"]]
    a = vlm.answer(images[:2], qs, renders=images[2:4], alpha=1.0, max_new_tokens=6)
    b = vlm.answer(images[:2], qs, renders=images[4:6], alpha=1.0, max_new_tokens=6)
    c = vlm.answer(images[:2], qs, renders=None, alpha=1.0, max_new_tokens=6)
    assert a == b == c
    d = vlm.dual_features(images[:2], images[2:4], 1.0)
    e = vlm.dual_features(images[:2], images[4:6], 1.0)
    assert torch.equal(d, e)


def test_k_samples_in_one_call_with_differentiable_logprobs(vlm, images):
    torch.manual_seed(0)
    feats = vlm.dual_features(images[:1], images[1:2], 0.5)
    prompt = vlm.prompt_ids(INSTRUCTIONS["round"])
    samples = vlm.sample(feats, prompt, k=5, max_new_tokens=6)
    assert samples.sequences.shape[0] == 5 and len(samples.texts) == 5
    assert samples.logprobs.shape == samples.sequences.shape
    assert (samples.logprobs <= 0).all()
    vlm.model.zero_grad()
    logprobs = vlm.token_logprobs(feats, prompt, samples.sequences)
    assert torch.allclose(logprobs, samples.logprobs, atol=1e-4)  # same numbers, now with a graph
    (-(logprobs.sum())).backward()
    grad = vlm.model.model.multi_modal_projector.linear_1.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    vlm.model.zero_grad()


def test_random_tiny_llava_saved_and_loaded_through_the_preset_path(vlm, images, tmp_path):
    """The code path real presets take (resolve folder → from_pretrained → answer), on a model
    built from config and written with save_pretrained."""
    vlm.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    loaded = load_vlm(str(tmp_path))
    ref = vlm.answer(images[:1], [INSTRUCTIONS["thin"]], images[1:2], alpha=0.4, max_new_tokens=6)
    got = loaded.answer(images[:1], [INSTRUCTIONS["thin"]], images[1:2], alpha=0.4, max_new_tokens=6)
    assert got == ref and isinstance(got[0], str)


def test_real_preset_offline_names_the_repo_and_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as info:
        load_vlm("llava-1.5-7b")
    msg = str(info.value)
    assert "llava-hf/llava-1.5-7b-hf" in msg and "huggingface-cli download llava-hf/llava-1.5-7b-hf" in msg
    from huggingface_hub import constants
    assert str(constants.HF_HUB_CACHE) in msg


def test_real_preset_offline_on_the_command_line_is_one_error_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "occ_core", "eval", "--preset", "llava-1.5-13b", "--data", str(tmp_path),
                           "--out", str(tmp_path / "o")], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "llava-hf/llava-1.5-13b-hf" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
