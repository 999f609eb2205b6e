"""occ-mllm: an open implementation of OCC-MLLM-Alpha, a multi-modal LLM for objects held and partly
hidden by a hand (dual CLIP + 3D visual encoder, beam search, CLIP-reward test-time adaptation)."""

__version__ = "0.1.0"
