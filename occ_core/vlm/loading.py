"""Find a VLM's files: a local folder as is, a Hub repo id through the Hugging Face cache.

Offline (or with the repo not cached) a Hub preset fails with one ``ModelNotAvailableError`` that
says what to download and where it goes, instead of a network traceback."""
from __future__ import annotations

import os
from pathlib import Path

from occ_core.errors import CheckpointError, ModelNotAvailableError

# Only what from_pretrained needs; never *.bin / *.pt (pickles).
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]


def _offline() -> bool:
    # read at call time: huggingface_hub reads HF_HUB_OFFLINE only once, at import
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_model_dir(ref: str, hub: bool) -> Path:
    """A local folder holding the model's config, safetensors weights, tokenizer and image processor."""
    if not hub:
        path = Path(ref)
        if not (path / "config.json").exists():
            raise CheckpointError(f"{path} is not a model folder (no config.json); train one with "
                                  "`python -m occ_core train vlm --data DIR --out DIR`")
        if not any(path.glob("*.safetensors")):
            raise CheckpointError(f"{path} has no .safetensors weights (other formats are not loaded)")
        return path
    from huggingface_hub import constants, snapshot_download
    try:
        return Path(snapshot_download(ref, allow_patterns=HUB_PATTERNS, local_files_only=_offline()))
    except Exception as exc:  # offline, not cached, no network, gated: all mean "not available here"
        raise ModelNotAvailableError(
            f"model {ref} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and cannot be "
            f"downloaded here ({type(exc).__name__}); pre-download it on a machine with network with "
            f"`hf download {ref}` (or `huggingface-cli download {ref}`) and copy the cache, "
            f"or pass a local folder") from None
