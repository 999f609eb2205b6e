"""The occ-mllm Gradio app: `python app.py` (tiny preset, offline, CPU) — see demo/ for the UI."""
from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from demo.images import MAX_FILE_MB  # noqa: E402  (after the analytics switch)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="OCC-MLLM-Alpha demo: reconstruct and ask about hand-held objects")
    p.add_argument("--preset", default=os.environ.get("OCC_PRESET", "tiny"),
                   help="tiny (bundled, offline; default, or $OCC_PRESET), llava-1.5-7b, llava-1.5-13b, or a model folder")
    p.add_argument("--recon", default=None, help="3D-branch checkpoint folder (default: the preset's)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 …")
    # a Hugging Face Space sets GRADIO_SERVER_NAME=0.0.0.0; locally we listen on loopback only
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to listen on (0.0.0.0 for a LAN)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from demo import build_app, load_context
    from occ_core.errors import OccError
    try:
        ctx = load_context(args.preset, args.device, args.recon)
    except OccError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ctx.recon_error:
        logging.getLogger("occ_mllm.app").warning("3D branch not loaded: %s", ctx.recon_error)
    app = build_app(ctx)
    app.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, share=args.share, max_file_size=f"{MAX_FILE_MB}mb",
        show_error=True, footer_links=["api", "gradio"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
