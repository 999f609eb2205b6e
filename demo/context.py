"""What the app holds while it runs: the pipeline, where its parts came from, the bundled examples,
and reconstructions at non-default marching-cubes resolutions (the pipeline caches only its own)."""
from __future__ import annotations

import json
import platform
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from occ_core.errors import OccError, ReconstructionError
from occ_core.pipeline import OccPipeline, image_key
from occ_core.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "assets" / "examples"


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_examples(folder: Path = EXAMPLES_DIR) -> list[dict]:
    """The bundled examples (``examples.json``), each with its file's absolute path and content hash."""
    index = folder / "examples.json"
    if not index.exists():
        return []
    records = json.loads(index.read_text())["examples"]
    for r in records:
        r["path"] = str(folder / r["file"])
        with Image.open(r["path"]) as im:
            r["key"] = image_key(im.convert("RGB"))
    return records


@dataclass
class AppContext:
    pipeline: OccPipeline
    preset: str
    device: str
    recon_source: str
    reconstructor: object | None = None  # the 3D branch, when it loaded at start-up
    recon_error: str | None = None       # why it did not (shown in the UI)
    examples: list[dict] = field(default_factory=list)
    export_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="occ_mllm_app_")))
    _by_resolution: OrderedDict = field(default_factory=OrderedDict)

    @property
    def default_resolution(self) -> int | None:
        return getattr(self.reconstructor, "resolution", None)

    def example_for(self, key: str) -> dict | None:
        return next((e for e in self.examples if e["key"] == key), None)

    def reconstruct(self, image: Image.Image, resolution: int | None):
        """The pipeline's cached reconstruction at its default resolution; other resolutions are
        computed by the reconstructor directly and kept in a small cache here."""
        if resolution is None or resolution == self.default_resolution or self.reconstructor is None:
            return self.pipeline.reconstruct(image)  # (without a 3D branch this raises its error)
        key = (image_key(image), int(resolution))
        if key not in self._by_resolution:
            try:
                self._by_resolution[key] = self.reconstructor.reconstruct(image, resolution=int(resolution))
            except TypeError:  # a reconstructor without a resolution knob: its own default
                return self.pipeline.reconstruct(image)
            while len(self._by_resolution) > 8:
                self._by_resolution.popitem(last=False)
        self._by_resolution.move_to_end(key)
        return self._by_resolution[key]

    def about(self) -> dict:
        p = get_preset(self.preset)
        vlm = self.pipeline.vlm
        cfg = vlm.model.config
        return {
            "preset": p.name, "preset_description": p.description,
            "vlm": str(getattr(vlm.model, "name_or_path", p.vlm)),
            "vision_tower": f"CLIP, {cfg.vision_config.num_hidden_layers} layers, {cfg.vision_config.image_size} px",
            "llm": f"{cfg.text_config.model_type}, {cfg.text_config.num_hidden_layers} layers, width {cfg.text_config.hidden_size}",
            "recon": self.recon_source, "recon_status": self.recon_error or "loaded",
            "device": self.device, "torch": torch.__version__, "python": platform.python_version(),
            "default_alpha": self.pipeline.default_alpha,
        }


def load_context(preset: str = "tiny", device: str = "auto", recon: str | None = None) -> AppContext:
    """Load the preset's pipeline. A VLM that cannot load raises its ``OccError`` (the app prints it
    and exits); a 3D branch that cannot load is remembered and shown, and α < 1 falls back to α = 1."""
    from occ_core.recon import Reconstructor
    device = resolve_device(device)
    source = recon or get_preset(preset).recon
    reconstructor, recon_error = None, None
    try:
        reconstructor = Reconstructor.from_pretrained(source, device=device)
    except OccError as exc:
        recon_error = str(exc)
    pipeline = OccPipeline.from_pretrained(preset, device=device, reconstructor=reconstructor)
    pipeline.recon_source = source  # a lazy retry loads the same source
    return AppContext(pipeline, preset, device, source, reconstructor, recon_error, load_examples())


def reconstruction_error_message(exc: ReconstructionError) -> str:
    return (f"3D reconstruction failed: {exc}. Answers still work: at α < 1 they fall back to the photo "
            "alone (α = 1).")
