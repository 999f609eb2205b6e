"""Named presets as data: where each component of the pipeline comes from.

A preset's ``vlm`` is either a folder bundled in ``assets/`` (tiny) or a Hugging Face Hub repo id
(the real LLaVA-1.5 checkpoints), loaded by the same ``from_pretrained`` code either way."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from occ_core.errors import PresetError

ASSETS = Path(__file__).resolve().parents[1] / "assets"
CHECKPOINTS = ASSETS / "checkpoints"


@dataclass(frozen=True)
class Preset:
    name: str
    vlm: str                 # local folder or Hub repo id of a LlavaForConditionalGeneration
    recon: str               # what ``Reconstructor.from_pretrained`` gets
    hub: bool                # True: ``vlm`` is a Hub repo id, downloaded into the HF cache
    description: str
    dtype: str = "float32"   # weights dtype on CPU; real presets would use bfloat16/float16 on GPU
    lora_targets: tuple[str, ...] = ()  # modules a LoRA adapter trains in stage 1 (real presets)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", str(CHECKPOINTS / "tiny" / "vlm"), "tiny", False,
                   "bundled: 4-layer CLIP tower (80 px) + 4-layer Llama, trained here on synthetic scenes"),
    "llava-1.5-7b": Preset("llava-1.5-7b", "llava-hf/llava-1.5-7b-hf", "tiny", True,
                           "LLaVA-1.5 7B (CLIP ViT-L/14-336 + Vicuna-7B)", "bfloat16", ("q_proj", "v_proj")),
    "llava-1.5-13b": Preset("llava-1.5-13b", "llava-hf/llava-1.5-13b-hf", "tiny", True,
                            "LLaVA-1.5 13B (CLIP ViT-L/14-336 + Vicuna-13B)", "bfloat16", ("q_proj", "v_proj")),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a folder path becomes an ad-hoc local preset."""
    if name in PRESETS:
        return PRESETS[name]
    if Path(name).is_dir():
        return Preset(Path(name).name, str(Path(name)), "tiny", False, f"local folder {name}")
    raise PresetError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)} or a model folder")
