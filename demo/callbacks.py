"""The app's event handlers: inputs from the UI (or ``gradio_client``) → pipeline calls → outputs.

Every handler turns errors a user can cause (``OccError``) into a ``gr.Error`` with the message, and
anything unexpected into a ``gr.Error`` too (logged with its traceback), so the server keeps serving.
All handlers that touch the models share one concurrency group of size 1 (see ``layout``): the
pipeline and its cache are not meant to be used from two threads at once."""
from __future__ import annotations

import functools
import logging
import time

import gradio as gr

from demo.context import AppContext, reconstruction_error_message
from demo.images import load_image
from demo import visuals
from occ_core.alpha_sweep import alpha_sweep, default_alphas
from occ_core.errors import OccError, ReconstructionError
from occ_core.pipeline import image_key

log = logging.getLogger("occ_mllm.app")
TTA_UNAVAILABLE = "test-time adaptation is not available in this build"


class TTAUnavailable(OccError):
    """``occ_core.tta`` is not part of this build (yet)."""


def user_errors(fn):
    """OccError → gr.Error(message); any other exception → gr.Error naming it, with the traceback logged."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except OccError as exc:
            raise gr.Error(str(exc)) from None
        except Exception as exc:  # a bug, not the user's fault: keep serving, say what happened
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"unexpected error ({type(exc).__name__}: {exc}); the app is still running — "
                           "try again, or with another image") from None
    return wrapper


def load_tta():
    """``occ_core.tta``'s entry points, imported on first use (the module may be absent in a build)."""
    try:
        from occ_core.tta import TTAConfig, adapt_and_answer
    except ModuleNotFoundError as exc:
        if exc.name in ("occ_core.tta", "occ_core"):
            raise TTAUnavailable(TTA_UNAVAILABLE) from None
        raise TTAUnavailable(f"{TTA_UNAVAILABLE} (missing dependency: {exc.name})") from None
    except ImportError as exc:
        raise TTAUnavailable(f"{TTA_UNAVAILABLE} ({exc})") from None
    return TTAConfig, adapt_and_answer


def _text(content) -> str:
    """A chat message's text, whether gradio gives a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", content.get("value", "")))
    if isinstance(content, (list, tuple)):
        return " ".join(_text(c) for c in content)
    return "" if content is None else str(content)


def to_pairs(history: list | None) -> list[tuple[str, str]]:
    """Chatbot messages [{role, content}, …] → the pipeline's [(user, assistant), …] (complete turns)."""
    pairs, pending = [], None
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = _text(m.get("content") if isinstance(m, dict) else getattr(m, "content", ""))
        if role == "user":
            pending = content
        elif role == "assistant" and pending is not None:
            pairs.append((pending, content))
            pending = None
    return pairs


def to_messages(pairs: list[tuple[str, str]]) -> list[dict]:
    out = []
    for user, assistant in pairs:
        out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return out


class Callbacks:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    @property
    def pipeline(self):
        return self.ctx.pipeline

    # ---- image -------------------------------------------------------------------------------
    @user_errors
    def image_info(self, image_path):
        """A new image: check it can be read, say whether it is a bundled example, reset the chat
        (as the LLaVA demo does: a conversation is about one image)."""
        if not image_path:
            return "", [], ""
        image = load_image(image_path)
        example = self.ctx.example_for(image_key(image))
        size = f"{image.width}×{image.height} px"
        return f"{visuals.example_summary(example)}  \n<small>{size}</small>", [], ""

    @user_errors
    def reconstruct(self, image_path, resolution, progress=gr.Progress()):
        image = load_image(image_path)
        resolution = int(resolution) if resolution else None
        progress(0.05, desc="reconstructing the object in 3D")
        try:
            rec = self.ctx.reconstruct(image, resolution)
        except ReconstructionError as exc:
            raise gr.Error(reconstruction_error_message(exc)) from None
        progress(0.8, desc="exporting the mesh")
        stem = f"object_{image_key(image)[:10]}_r{resolution or self.ctx.default_resolution or 'default'}"
        from occ_core.recon import export_mesh
        glb = export_mesh(rec.mesh, self.ctx.export_dir / f"{stem}.glb")
        obj = export_mesh(rec.mesh, self.ctx.export_dir / f"{stem}.obj")
        example = self.ctx.example_for(image_key(image))
        summary = visuals.reconstruction_summary(rec, example, resolution or self.ctx.default_resolution)
        return visuals.render_pair(rec), visuals.overlay(image, rec), str(glb), [str(glb), str(obj)], summary

    # ---- chat ---------------------------------------------------------------------------------
    def _reconstruct_first(self, image, alpha, progress) -> None:
        """Warm the pipeline's cache so the progress bar can say what takes the time; a failure is
        not an error here (the answer falls back to α = 1 and says so)."""
        if alpha < 1:
            progress(0.1, desc="3D reconstruction (once per image)")
            try:
                self.pipeline.reconstruct(image)
            except ReconstructionError:
                pass

    def _answer(self, image, pairs, message, alpha, tta_on, steps, k, beams, max_new_tokens, progress):
        message = (message or "").strip()
        if not message:
            raise OccError("the question is empty: type one, or click one of the instruction buttons")
        alpha = float(alpha)
        started = time.perf_counter()
        self._reconstruct_first(image, alpha, progress)
        if tta_on:
            TTAConfig, adapt_and_answer = load_tta()
            progress(0.4, desc=f"test-time adaptation ({int(steps)} steps × {int(k)} samples)")
            result = adapt_and_answer(self.pipeline, image, message, alpha=alpha,
                                      config=TTAConfig(steps=int(steps), k=int(k), seed=0), num_beams=int(beams))
            _, info = self.pipeline.features(image, alpha)  # cached: only for the α-used note
            return result.answer, visuals.answer_status(info, time.perf_counter() - started, result)
        progress(0.5, desc="answering")
        info = self.pipeline.chat(image, pairs, message, alpha, int(beams), int(max_new_tokens))
        return info.text, visuals.answer_status(info, time.perf_counter() - started)

    @user_errors
    def chat(self, image_path, history, message, alpha, tta_on, steps, k, beams, max_new_tokens,
             progress=gr.Progress()):
        image = load_image(image_path)
        pairs = to_pairs(history)
        reply, status = self._answer(image, pairs, message, alpha, tta_on, steps, k, beams, max_new_tokens, progress)
        return to_messages(pairs + [(message.strip(), reply)]), "", status

    def ask(self, question: str):
        """A handler that asks one fixed question (the instruction buttons)."""
        def ask_fixed(image_path, history, alpha, tta_on, steps, k, beams, max_new_tokens, progress=gr.Progress()):
            return self.chat(image_path, history, question, alpha, tta_on, steps, k, beams, max_new_tokens, progress)
        return ask_fixed

    @user_errors
    def regenerate(self, image_path, history, alpha, tta_on, steps, k, beams, max_new_tokens, progress=gr.Progress()):
        """Answer the last question again, with the current settings."""
        pairs = to_pairs(history)
        if not pairs:
            raise OccError("nothing to regenerate yet: ask a question first")
        image = load_image(image_path)
        *earlier, (question, _) = pairs
        reply, status = self._answer(image, earlier, question, alpha, tta_on, steps, k, beams, max_new_tokens, progress)
        return to_messages(earlier + [(question, reply)]), status

    def clear(self):
        return [], "", ""

    # ---- compare: CLIP only / dual / dual + TTA --------------------------------------------------
    @user_errors
    def compare(self, image_path, question, alpha, steps, k, beams, max_new_tokens, progress=gr.Progress()):
        image = load_image(image_path)
        question = (question or "").strip()
        if not question:
            raise OccError("the question is empty: type one, or click one of the instruction buttons")
        alpha, beams, max_new_tokens = float(alpha), int(beams), int(max_new_tokens)
        progress(0.05, desc="CLIP only (α = 1)")
        photo_only = self.pipeline.answer(image, question, 1.0, beams, max_new_tokens).text
        self._reconstruct_first(image, alpha, progress)
        progress(0.4, desc=f"dual view (α = {alpha:.2f})")
        dual = self.pipeline.answer(image, question, alpha, beams, max_new_tokens)
        status = visuals.answer_status(dual, 0.0).split(" · ")[0]
        if dual.fallback:
            status += f"  \n⚠️ {dual.note}"
        try:
            TTAConfig, adapt_and_answer = load_tta()
        except TTAUnavailable as exc:
            gr.Warning(str(exc))
            return photo_only, dual.text, f"({exc})", visuals.reward_frame([]), status
        progress(0.6, desc=f"dual view + test-time adaptation ({int(steps)} steps × {int(k)} samples)")
        try:
            result = adapt_and_answer(self.pipeline, image, question, alpha=alpha,
                                      config=TTAConfig(steps=int(steps), k=int(k), seed=0), num_beams=beams)
        except OccError as exc:  # keep the two answers we have; say why the third is missing
            gr.Warning(f"test-time adaptation failed: {exc}")
            return photo_only, dual.text, f"(test-time adaptation failed: {exc})", visuals.reward_frame([]), status
        status += f" · TTA {result.seconds:.2f} s"
        if getattr(result, "note", None):
            status += f"  \nTTA: {result.note}"
        return photo_only, dual.text, result.answer, visuals.reward_frame(result.trace), status

    # ---- α sweep ------------------------------------------------------------------------------
    @user_errors
    def sweep(self, image_path, question, points, beams, max_new_tokens, progress=gr.Progress()):
        image = load_image(image_path)
        alphas = default_alphas(max(2, int(points)))
        if not (question or "").strip():
            raise OccError("the question is empty: type one, or pick one of the instructions")
        self._reconstruct_first(image, 0.0, progress)

        def step(done, total):
            progress((done, total), desc=f"α = {alphas[done - 1]:.2f}", unit="α")
        result = alpha_sweep(self.pipeline, image, question, alphas, int(beams), int(max_new_tokens), step)
        note = f"⚠️ {result.note}" if result.note else (
            "Confidence = exp(mean token log-probability) of the answer given at that α"
            + ("; P(yes) = p(“Yes.”) / (p(“Yes.”) + p(“No.”))." if result.points[0].p_yes is not None else "."))
        return visuals.sweep_frame(result), visuals.sweep_table(result), note
