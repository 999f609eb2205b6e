"""The app's layout: one input image (with bundled examples) shared by four tabs — Reconstruct, Ask,
α sweep, About — and the wiring of every event to its handler in ``demo.callbacks``."""
from __future__ import annotations

import gradio as gr

from demo.callbacks import Callbacks
from demo.context import AppContext
from demo.images import MAX_SIDE
from occ_core.text import INSTRUCTIONS

TITLE = "OCC-MLLM-Alpha: objects held in a hand, partly hidden by it"
MODEL_EVENTS = {"concurrency_id": "model", "concurrency_limit": 1}  # one pipeline call at a time
INSTRUCTION_LABELS = {"category": "What is it?", "round": "Round?", "long": "Long?", "thin": "Thin?"}

METHOD = """
**The method (OCC-MLLM-Alpha).** A hand hides part of the object it holds, so a VLM that sees only
the photo guesses. The 3D branch predicts the hand's joints and the object's signed distance field from the
single photo (pixel-aligned, segmentation and hand-articulated features, after MOHO and gSDF), meshes it by
marching cubes and renders the object **without the hand** from the same camera. CLIP encodes both the
photo (v1) and the render (v2); their features are blended, **v = α·v1 + (1−α)·v2**, and fed to a
LLaVA-style LLM that answers by beam search. Optionally, test-time adaptation samples K answers, scores
them with a CLIP reward against the photo and the render, and takes a few REINFORCE steps on the projector
before answering (weights restored after every request).
"""


class ImageUpload(gr.Image):
    """``gr.Image`` that hands the callback the uploaded file's path without opening it, so decoding
    and its errors (corrupt file, decompression bomb, odd modes) are handled by ``demo.images``."""
    is_template = True  # the browser uses gr.Image's component

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return super().preprocess(payload)  # pasted or webcam data URLs: gradio writes a file


def _about(ctx: AppContext) -> str:
    a = ctx.about()
    return f"""
### This running app
| | |
|---|---|
| preset | `{a['preset']}` — {a['preset_description']} |
| VLM (LLaVA) | `{a['vlm']}`: vision tower {a['vision_tower']}; LLM {a['llm']} |
| 3D branch | `{a['recon']}` — {a['recon_status']} |
| default α | {a['default_alpha']:.2f} |
| device | `{a['device']}` · torch {a['torch']} · Python {a['python']} |

{METHOD}

**Where the parts come from.** The tiny preset is bundled in `assets/checkpoints/tiny/` and was trained
here on synthetic SOMVideo-style scenes (`occ_core.scenes`); real presets (`llava-1.5-7b`, `llava-1.5-13b`)
load `llava-hf/…` from the Hugging Face cache. Examples are scenes from `occ_core.scenes`
(`python demo/make_examples.py`). Every control here is also an API endpoint (see *Use via API* below).
"""


def build_app(ctx: AppContext) -> gr.Blocks:
    cb = Callbacks(ctx)
    resolution_default = ctx.default_resolution or 64
    with gr.Blocks(title="OCC-MLLM-Alpha", analytics_enabled=False) as app:
        gr.Markdown(f"## {TITLE}\nUpload a photo of a hand holding an object (or pick an example), reconstruct "
                    "the object in 3D, and ask about it with the photo and the hand-free render blended by α.")
        if ctx.recon_error:
            gr.Markdown(f"⚠️ **The 3D branch is not available:** {ctx.recon_error}  \nAnswers use the photo "
                        "alone (α = 1) until it is.", elem_id="recon-warning")
        with gr.Row():
            with gr.Column(scale=2, min_width=280):
                image = ImageUpload(label="Hand-held object", type="filepath", image_mode=None, height=300,
                                    sources=["upload", "clipboard"], elem_id="input-image")
                image_info = gr.Markdown(elem_id="image-info")
                if ctx.examples:
                    levels = ", ".join(f"{e['category']} {e['occlusion_ratio']:.2f}" for e in ctx.examples)
                    gr.Examples(examples=[[e["path"]] for e in ctx.examples], inputs=[image], examples_per_page=6,
                                label=f"Examples, low to high occlusion ({levels})")
                gr.Markdown(f"<small>JPEG/PNG/WebP; larger than {MAX_SIDE} px a side is downscaled.</small>")
            with gr.Column(scale=5):
                with gr.Tabs():
                    with gr.Tab("Reconstruct", id="reconstruct"):
                        with gr.Row(equal_height=True):
                            resolution = gr.Slider(32, 128, value=resolution_default, step=16, scale=3,
                                                   label="marching-cubes resolution (grid cells a side)")
                            recon_btn = gr.Button("Reconstruct", variant="primary", scale=1, elem_id="reconstruct-btn")
                        with gr.Row():
                            render = gr.Image(label="object without the hand: render from the input camera | framed as the VLM sees it (v2)", type="pil",
                                              interactive=False, height=260, elem_id="render")
                            overlay = gr.Image(label="predicted: joints · hand (blue) · visible (yellow) · hidden (red)",
                                               type="pil", interactive=False, height=260, elem_id="overlay")
                        model3d = gr.Model3D(label="reconstructed mesh (drag to turn, scroll to zoom)", height=340,
                                             clear_color=(0.95, 0.95, 0.95, 1.0), elem_id="mesh-viewer")
                        downloads = gr.File(label="download the mesh: GLB / OBJ (y up, vertex colours)",
                                            file_count="multiple", interactive=False, height=110, elem_id="mesh-files")
                        recon_summary = gr.Markdown(elem_id="recon-summary")

                    with gr.Tab("Ask", id="ask"):
                        alpha = gr.Slider(0, 1, value=ctx.pipeline.default_alpha, step=0.05, elem_id="alpha",
                                          label="α — weight of the photo: 1 = CLIP on the photo only, 0 = the 3D render only")
                        with gr.Accordion("Generation and test-time adaptation", open=False):
                            with gr.Row():
                                beams = gr.Slider(1, 5, value=3, step=1, label="beams")
                                max_new = gr.Slider(4, 128, value=48, step=4, label="max new tokens")
                            with gr.Row():
                                tta_on = gr.Checkbox(False, label="test-time adaptation (CLIP reward)", elem_id="tta")
                                steps = gr.Slider(1, 10, value=4, step=1, label="TTA steps")
                                k = gr.Slider(2, 16, value=8, step=1, label="TTA samples K")
                        with gr.Row():
                            instruction_buttons = {key: gr.Button(INSTRUCTION_LABELS[key], size="sm", elem_id=f"ask-{key}")
                                                   for key in INSTRUCTIONS}
                        chatbot = gr.Chatbot(label="Chat about this image", height=300, elem_id="chat",
                                             feedback_options=None)
                        with gr.Row():
                            question = gr.Textbox(placeholder="Ask about the object in the hand…", show_label=False,
                                                  scale=5, elem_id="question", submit_btn=False)
                            send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
                        with gr.Row():
                            regenerate = gr.Button("↻ Regenerate", size="sm")
                            clear = gr.Button("✕ Clear", size="sm")
                        status = gr.Markdown(elem_id="answer-status")

                        gr.Markdown("### Compare: one question, three ways")
                        with gr.Row(equal_height=True):
                            compare_q = gr.Dropdown(list(INSTRUCTIONS.values()), value=INSTRUCTIONS["category"],
                                                    allow_custom_value=True, label="question", scale=4)
                            compare_btn = gr.Button("Compare", scale=1, elem_id="compare-btn")
                        with gr.Row():
                            photo_only = gr.Textbox(label="CLIP only (α = 1)", interactive=False, elem_id="cmp-clip")
                            dual = gr.Textbox(label="dual (chosen α)", interactive=False, elem_id="cmp-dual")
                            dual_tta = gr.Textbox(label="dual + TTA", interactive=False, elem_id="cmp-tta")
                        reward_plot = gr.LinePlot(x="step", y="mean reward", title="TTA: mean CLIP reward per step",
                                                  height=220, elem_id="reward-plot")
                        compare_status = gr.Markdown()

                    with gr.Tab("α sweep", id="sweep"):
                        with gr.Row(equal_height=True):
                            sweep_q = gr.Dropdown(list(INSTRUCTIONS.values()), value=INSTRUCTIONS["round"],
                                                  allow_custom_value=True, label="question", scale=4)
                            points = gr.Slider(3, 21, value=11, step=1, label="α values", scale=2)
                            sweep_btn = gr.Button("Sweep α", variant="primary", scale=1, elem_id="sweep-btn")
                        sweep_plot = gr.LinePlot(x="alpha", y="score", color="series", y_lim=[0, 1], x_lim=[0, 1],
                                                 title="answer across α", height=260, elem_id="sweep-plot")
                        sweep_table = gr.Dataframe(label="answers", interactive=False, wrap=True)
                        sweep_note = gr.Markdown()

                    with gr.Tab("About", id="about"):
                        gr.Markdown(_about(ctx), elem_id="about")

        # ---- events ---------------------------------------------------------------------------
        ask_inputs = [image, chatbot, alpha, tta_on, steps, k, beams, max_new]
        image.change(cb.image_info, [image], [image_info, chatbot, status], api_name="image_info")
        recon_btn.click(cb.reconstruct, [image, resolution], [render, overlay, model3d, downloads, recon_summary],
                        api_name="reconstruct", **MODEL_EVENTS)
        gr.on([send.click, question.submit], cb.chat,
              [image, chatbot, question, alpha, tta_on, steps, k, beams, max_new], [chatbot, question, status],
              api_name="chat", **MODEL_EVENTS)
        for key, button in instruction_buttons.items():
            button.click(cb.ask(INSTRUCTIONS[key]), ask_inputs, [chatbot, question, status],
                         api_name=f"ask_{key}", **MODEL_EVENTS)
        regenerate.click(cb.regenerate, ask_inputs, [chatbot, status], api_name="regenerate", **MODEL_EVENTS)
        clear.click(cb.clear, None, [chatbot, question, status], api_name="clear", queue=False)
        compare_btn.click(cb.compare, [image, compare_q, alpha, steps, k, beams, max_new],
                          [photo_only, dual, dual_tta, reward_plot, compare_status], api_name="compare", **MODEL_EVENTS)
        sweep_btn.click(cb.sweep, [image, sweep_q, points, beams, max_new], [sweep_plot, sweep_table, sweep_note],
                        api_name="sweep", **MODEL_EVENTS)
    return app
