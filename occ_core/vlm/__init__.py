"""LLaVA-style VLM with the dual (photo + 3D render) visual input of OCC-MLLM-Alpha."""
from occ_core.vlm.model import DualViewLlava, Samples, blend

__all__ = ["DualViewLlava", "Samples", "blend", "load_vlm"]


def load_vlm(preset_or_path: str, device: str = "cpu") -> DualViewLlava:
    """A preset name (``tiny``, ``llava-1.5-7b`` …) or a model folder → ``DualViewLlava``."""
    import torch
    from occ_core.presets import get_preset
    from occ_core.vlm.loading import resolve_model_dir
    preset = get_preset(preset_or_path)
    path = resolve_model_dir(preset.vlm, preset.hub)
    dtype = getattr(torch, preset.dtype) if device != "cpu" else torch.float32
    return DualViewLlava.from_pretrained(path, dtype=dtype, device=device)
