"""The app through its API (``gradio_client``): every endpoint with a bundled example, bad inputs
answered with useful errors while the server keeps serving, and the error paths of the handlers."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from app_server import EXAMPLES
from occ_core.text import INSTRUCTIONS

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

ENDPOINTS = {"/image_info", "/reconstruct", "/chat", "/ask_category", "/ask_round", "/ask_long", "/ask_thin",
             "/regenerate", "/clear", "/compare", "/sweep"}
GEN = (False, 2, 2, 2, 12)  # tta off, tta steps, K, beams, max new tokens: quick


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def example():
    record = json.loads((EXAMPLES / "examples.json").read_text())["examples"][2]
    return record, handle_file(str(EXAMPLES / record["file"]))


def text_of(message) -> str:
    c = message["content"]
    return c if isinstance(c, str) else " ".join(part.get("text", "") for part in c)


def test_every_endpoint_is_named(client):
    assert ENDPOINTS <= set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])


def test_image_info_knows_a_bundled_example(client, example):
    record, image = example
    info, chat, status = client.predict(image, api_name="/image_info")
    assert record["category"] in info and f"{record['occlusion_ratio']:.2f}" in info and chat == []


def test_reconstruct_gives_render_overlay_and_meshes(client, example):
    record, image = example
    render, overlay, glb, files, summary = client.predict(image, 48, api_name="/reconstruct")
    pair = Image.open(render)
    assert pair.width == 2 * pair.height + 4 and Image.open(overlay).size == (256, 256)  # render | framed view
    assert glb.endswith(".glb") and open(glb, "rb").read(4) == b"glTF"
    assert sorted(f.rsplit(".", 1)[1] for f in files) == ["glb", "obj"]
    assert "occlusion ratio" in summary and f"(true: {record['occlusion_ratio']:.2f})" in summary and "48³" in summary


def test_chat_turns_regenerate_and_clear(client, example):
    _, image = example
    chat, box, status = client.predict(image, [], INSTRUCTIONS["category"], 0.5, *GEN, api_name="/chat")
    assert [m["role"] for m in chat] == ["user", "assistant"] and box == "" and "α used" in status
    chat, _, status = client.predict(image, chat, 0.3, *GEN, api_name="/ask_round")  # a new α: cached reconstruction
    assert len(chat) == 4 and text_of(chat[2]) == INSTRUCTIONS["round"]
    chat, status = client.predict(image, chat, 1.0, *GEN, api_name="/regenerate")
    assert len(chat) == 4 and text_of(chat[2]) == INSTRUCTIONS["round"] and "α used 1.00" in status
    assert client.predict(api_name="/clear") == ([], "", "")


def test_compare_answers_three_ways(client, example):
    _, image = example
    photo_only, dual, with_tta, rewards, status = client.predict(image, INSTRUCTIONS["long"], 0.5, 1, 2, 1, 8,
                                                                 api_name="/compare")
    assert photo_only and dual and with_tta and "α used" in status
    assert rewards["columns"] == ["step", "mean reward"]


def test_alpha_sweep_scores_each_alpha(client, example):
    _, image = example
    plot, table, note = client.predict(image, INSTRUCTIONS["thin"], 3, 1, 8, api_name="/sweep")
    assert [row[0] for row in table["data"]] == [0.0, 0.5, 1.0]
    assert {row[2] for row in plot["data"]} == {"confidence in the answer", "P(yes)"}
    assert all(0 <= row[1] <= 1 for row in plot["data"])


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.jpg").write_bytes(b"this is not an image")
    Image.new("L", (8000, 6000)).save(d / "huge.png")          # 48 MP > the 40 MP cap
    Image.new("RGB", (64, 64), (200, 30, 30)).save(d / "cut.png")
    (d / "cut.png").write_bytes((d / "cut.png").read_bytes()[:60])  # truncated
    Image.new("RGBA", (96, 80), (255, 0, 0, 100)).save(d / "rgba.png")
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(d / "grey16.png")
    Image.new("RGB", (2400, 1600), (20, 120, 40)).save(d / "large.jpg")  # downscaled, not refused
    return d


@pytest.mark.parametrize("name, message", [("notes.jpg", "not an image"), ("huge.png", "megapixels"),
                                           ("cut.png", "damaged")])
def test_bad_files_get_a_useful_error(client, bad_files, name, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(bad_files / name)), api_name="/image_info")


@pytest.mark.parametrize("name, size", [("rgba.png", "96×80"), ("grey16.png", "64×64"), ("large.jpg", "1024×683")])
def test_odd_but_valid_images_are_converted(client, bad_files, name, size):
    info, _, _ = client.predict(handle_file(str(bad_files / name)), api_name="/image_info")
    assert size in info and "no ground truth" in info


def test_user_mistakes_are_errors_and_the_server_keeps_serving(client, example):
    _, image = example
    with pytest.raises(AppError, match="question is empty"):
        client.predict(image, [], "   ", 0.5, *GEN, api_name="/chat")
    with pytest.raises(AppError, match="no image"):
        client.predict(None, [], "Is it round?", 0.5, *GEN, api_name="/chat")
    with pytest.raises(AppError, match="nothing to regenerate"):
        client.predict(image, [], 0.5, *GEN, api_name="/regenerate")
    chat, _, _ = client.predict(image, [], INSTRUCTIONS["long"], 1.0, *GEN, api_name="/chat")
    assert len(chat) == 2


# ---- handler error paths, without a server ------------------------------------------------------
class _FailingPipeline:
    default_alpha = 0.5

    def reconstruct(self, image):
        from occ_core.errors import ReconstructionError
        raise ReconstructionError("no surface found")


def test_a_failed_reconstruction_is_a_clear_error():
    import gradio as gr
    from demo.callbacks import Callbacks
    from demo.context import AppContext
    ctx = AppContext(_FailingPipeline(), "tiny", "cpu", "tiny")
    with pytest.raises(gr.Error, match="3D reconstruction failed: no surface found"):
        Callbacks(ctx).reconstruct(str(EXAMPLES / "mug_low.jpg"), 64)


def test_tta_missing_from_the_build_is_a_clear_error(monkeypatch):
    import gradio as gr
    from demo.callbacks import Callbacks, TTA_UNAVAILABLE
    from demo.context import AppContext
    monkeypatch.setitem(sys.modules, "occ_core.tta", None)  # import fails as if the module were absent
    cb = Callbacks(AppContext(_FailingPipeline(), "tiny", "cpu", "tiny"))
    with pytest.raises(gr.Error, match=TTA_UNAVAILABLE):
        cb.chat(str(EXAMPLES / "mug_low.jpg"), [], "Is it round?", 1.0, True, 2, 2, 1, 8)
