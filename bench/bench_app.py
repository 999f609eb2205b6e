"""The app's responsiveness, measured through its API in one run:

1. time to the first answer about an example (a fresh image: 3D reconstruction + encoding + answer);
2. time to a second answer after moving α (the reconstruction and tower features come from the
   pipeline's cache, only the blend and the answer are new);
and their ratio (how much the cache saves).

    python bench/bench_app.py [--example knife_medium.jpg] [--app-args "--recon runs/recon_full"]

Starts ``app.py`` on a free loopback port with one torch thread and stops it at the end.
"""
import argparse
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What's the object in the hand?"


def start_app(extra: list[str]) -> tuple[subprocess.Popen, str, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tempfile.mkstemp(prefix="bench_app_", suffix=".log")[1])
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port), *extra],
                            cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 300:
        if proc.poll() is not None:
            sys.exit(f"app.py exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/gradio_api/info", timeout=5)
            return proc, url, log
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("app.py did not start within 300 s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", default="knife_medium.jpg")
    ap.add_argument("--alpha", type=float, default=0.5, help="α of the first answer")
    ap.add_argument("--moved-alpha", type=float, default=0.2, help="α of the second answer")
    ap.add_argument("--app-args", default="", help="extra app.py arguments, e.g. \"--recon runs/recon_full\"")
    args = ap.parse_args()
    from gradio_client import Client, handle_file

    t_start = time.perf_counter()
    proc, url, _ = start_app(shlex.split(args.app_args))
    print(f"app up in {time.perf_counter() - t_start:.1f} s at {url}")
    try:
        client = Client(url, verbose=False)
        image = handle_file(str(ROOT / "assets" / "examples" / args.example))
        settings = (False, 4, 8, 3, 48)  # no TTA; 3 beams; 48 new tokens (the app's defaults)
        t0 = time.perf_counter()
        chat, _, status1 = client.predict(image, [], QUESTION, args.alpha, *settings, api_name="/chat")
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, _, status2 = client.predict(image, [], QUESTION, args.moved_alpha, *settings, api_name="/chat")
        second = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    answer = chat[-1]["content"]
    answer = answer if isinstance(answer, str) else " ".join(p.get("text", "") for p in answer)
    print(f"example {args.example}: “{answer}”")
    print(f"first answer (α = {args.alpha}, fresh image):   {first:6.2f} s   [{status1.splitlines()[0]}]")
    print(f"second answer (α moved to {args.moved_alpha}, cached): {second:6.2f} s   [{status2.splitlines()[0]}]")
    print(f"ratio first / second: {first / second:.1f}×")
    if "α = 1" in status1:
        print("note: the 3D branch was not available, so both answers used the photo alone (α = 1)")


if __name__ == "__main__":
    main()
