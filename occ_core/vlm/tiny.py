"""The tiny preset's architecture and tokenizer, built from scratch here (no download).

A 4-layer CLIP vision tower on 80 px images (patch 16 → 25 features), a 4-layer Llama of width 256,
and a byte-level BPE tokenizer trained with ``tokenizers`` on our own text."""
from __future__ import annotations

from typing import Iterable

from occ_core.text import IMAGE_TOKEN

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", IMAGE_TOKEN]
IMAGE_SIZE = 80
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """A byte-level BPE ``PreTrainedTokenizerFast``: any text encodes, frequent words are one token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", model_max_length=512, padding_side="left")


def tiny_config(tokenizer):
    """LlavaConfig of the tiny preset for ``tokenizer``'s vocabulary."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig
    vision = CLIPVisionConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                              image_size=IMAGE_SIZE, patch_size=16, projection_dim=128)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    return LlavaConfig(vision_config=vision, text_config=text, image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                       vision_feature_layer=-1, vision_feature_select_strategy="default",
                       image_seq_length=(IMAGE_SIZE // 16) ** 2, tie_word_embeddings=True)


def tiny_image_processor():
    from transformers import CLIPImageProcessor
    return CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                              image_mean=CLIP_MEAN, image_std=CLIP_STD)


def random_tiny_vlm(tokenizer, seed: int = 0):
    """A freshly initialised tiny ``DualViewLlava`` (the start of stage-1 training, and tests)."""
    import torch
    from transformers import LlavaForConditionalGeneration
    from occ_core.vlm.model import DualViewLlava
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(tiny_config(tokenizer)).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return DualViewLlava(model, tokenizer, tiny_image_processor())
