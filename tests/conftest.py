import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """8 scenes × 2 views at 64 px, split 6/1/1, generated once for the session."""
    from occ_core.scenes.builder import generate_dataset
    out = tmp_path_factory.mktemp("data") / "scenes"
    summary = generate_dataset(out, scenes=8, views=2, size=64, seed=11, workers=2, progress=False)
    return out, summary


from app_server import app_url  # noqa: E402,F401  (session fixture: the app in a subprocess, shared by the app tests)
