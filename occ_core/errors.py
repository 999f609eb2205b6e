"""Errors a user can cause. Each message says what happened and what to do; the CLI prints it on
one line and exits with code 2, the app turns it into a ``gr.Error``."""


class OccError(Exception):
    """Base class for every user-facing error of occ-mllm."""


class DatasetError(OccError):
    """A dataset folder is missing, malformed, or cannot be written."""


class GenerationError(OccError):
    """Scene generation was asked for something it cannot do (bad counts, sizes, folders)."""


class ReconstructionError(OccError):
    """A signed distance field could not be turned into a usable mesh (no surface, NaN, degenerate).
    Callers can fall back to the RGB-only path."""


class ModelNotAvailableError(OccError):
    """A preset's weights are neither bundled nor in the local Hugging Face cache, and cannot be
    downloaded (offline). The message names the repo id, the download command and the cache path."""


class CheckpointError(OccError):
    """A model folder or training checkpoint is missing, malformed, or not in safetensors."""


class PresetError(OccError):
    """An unknown preset name (and not a folder either)."""
