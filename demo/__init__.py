"""The Gradio app of occ-mllm: ``layout`` builds the UI, ``callbacks`` handle its events,
``context`` loads the pipeline, ``images`` decodes uploads, ``visuals`` draws results."""
from demo.context import AppContext, load_context
from demo.layout import build_app

__all__ = ["AppContext", "build_app", "load_context"]
