"""Answer → caption templates of the CLIP reward, and the offline message of real reward models."""
import pytest

from occ_core.captions import AnswerCaption, answer_caption, caption_specs, caption_true, question_attribute
from occ_core.errors import ModelNotAvailableError
from occ_core.reward import ClipReward, reward_images
from occ_core.text import DESCRIBE, INSTRUCTIONS


def test_category_answers_become_hand_holding_captions():
    assert answer_caption(INSTRUCTIONS["category"], "The object is knife.") == AnswerCaption("a photo of a hand holding a knife")
    assert answer_caption(INSTRUCTIONS["category"], "It is a cell phone").text == "a photo of a hand holding a cellphone"
    assert answer_caption(INSTRUCTIONS["category"], "The object is banana.").text == "a photo of a hand holding a banana"


def test_yes_no_answers_become_a_claim_and_its_opposite():
    yes = answer_caption(INSTRUCTIONS["round"], "Yes.")
    assert yes == AnswerCaption("a photo of a hand holding a round object", "a photo of a hand holding an object that is not round")
    no = answer_caption(INSTRUCTIONS["thin"], "No, it is not.")
    assert no == AnswerCaption("a photo of a hand holding an object that is not thin", "a photo of a hand holding a thin object")
    assert answer_caption(INSTRUCTIONS["long"], "maybe") == AnswerCaption(None)
    assert question_attribute(INSTRUCTIONS["long"]) == "long" and question_attribute(INSTRUCTIONS["category"]) is None


def test_other_answers_are_their_own_caption():
    assert answer_caption(DESCRIBE, "The hand holds a red  Bottle.").text == "the hand holds a red bottle."
    assert answer_caption(INSTRUCTIONS["category"], "   ") == AnswerCaption(None)


def test_training_captions_are_true_of_their_image_only():
    labels = {"category": "mug", "color": "blue", "round": True, "long": False, "thin": False}
    specs = caption_specs(labels, "The hand holds a blue mug. It is round, not long and not thin.")
    texts = [t for t, _ in specs]
    assert "a photo of a hand holding a mug" in texts and "a photo of a hand holding a blue mug" in texts
    assert "a photo of a hand holding an object that is not long" in texts
    assert all(caption_true(c, labels) for _, c in specs)
    knife = {"category": "knife", "color": "blue", "round": False, "long": True, "thin": True}
    assert not any(caption_true(c, knife) for t, c in specs if "mug" in t or "round" in t)


def test_reward_images_fall_back_to_the_photo_without_a_render():
    assert reward_images("p", "r", "both") == (["p", "r"], "both")
    assert reward_images("p", "r", "render") == (["r"], "render")
    assert reward_images("p", None, "both") == (["p"], "image")


def test_real_reward_model_offline_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as c
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotAvailableError) as err:
        ClipReward.from_pretrained("llava-1.5-7b")
    msg = str(err.value)
    assert "ViT-L-14" in msg and "openai" in msg and "hf download" in msg and "--reward tiny" in msg
