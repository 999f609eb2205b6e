"""Test-time adaptation timings, measured side by side in one run (median of repeats).

    python bench/bench_tta.py [--data data/scenes] [--split test] [--k 8] [--repeats 7]

1. One TTA step with K samples (batched sampling + CLIP reward + REINFORCE backward + AdamW step,
   the code ``occ_core.tta`` runs) against one plain beam-search answer. Target: ≤ 2×.
2. K samples in one batched ``sample`` call against K sequential one-sample calls. Target: ≥ 2× faster.
Uses the bundled tiny VLM when it is there, else a randomly initialised tiny LLaVA (said so).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from occ_core.captions import answer_caption  # noqa: E402
from occ_core.errors import OccError  # noqa: E402
from occ_core.reward import ClipReward  # noqa: E402
from occ_core.scenes.dataset import SceneDataset  # noqa: E402
from occ_core.text import INSTRUCTIONS  # noqa: E402
from occ_core.tta import TTAConfig, policy_view, reinforce_step  # noqa: E402


def load_vlm():
    from occ_core.vlm import load_vlm as load
    try:
        return load("tiny"), "bundled tiny VLM"
    except OccError as exc:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from vlm_helpers import corpus
        from occ_core.vlm.tiny import random_tiny_vlm, train_tokenizer
        return random_tiny_vlm(train_tokenizer(corpus())), f"random tiny LLaVA ({exc})"


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/scenes")
    ap.add_argument("--split", default="test")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--max-new-tokens", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vlm, which = load_vlm()
    reward = ClipReward.from_pretrained("tiny")
    ds = SceneDataset(args.data, args.split, with_depth=False)
    photo = Image.fromarray(ds[0]["image"])
    question = INSTRUCTIONS["category"]
    features = vlm.tower_features(vlm.pixel_values([photo]))
    prompt = vlm.prompt_ids(question)
    image_emb = reward.image_embeddings([photo])
    config = TTAConfig(k=args.k)
    view, params = policy_view(vlm, config)
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    torch.manual_seed(0)

    def plain():
        vlm.generate(features, [prompt], 3, args.max_new_tokens)

    def tta_step():
        samples = view.sample(features, prompt, args.k, max_new_tokens=args.max_new_tokens)
        r = reward.caption_rewards([answer_caption(question, t) for t in samples.texts], image_emb)
        reinforce_step(view, features, prompt, samples, r - r.mean(), params, opt)

    def batched():
        vlm.sample(features, prompt, args.k, max_new_tokens=args.max_new_tokens)

    def sequential():
        for _ in range(args.k):
            vlm.sample(features, prompt, 1, max_new_tokens=args.max_new_tokens)

    t_plain, t_step = median_time(plain, args.repeats), median_time(tta_step, args.repeats)
    t_batched, t_seq = median_time(batched, args.repeats), median_time(sequential, args.repeats)
    print(f"model: {which}; reward: {reward.name}; {torch.get_num_threads()} thread(s); K = {args.k}; "
          f"max {args.max_new_tokens} new tokens; median of {args.repeats}")
    print(f"1. one TTA step {t_step * 1000:.0f} ms vs one plain answer (beam 3) {t_plain * 1000:.0f} ms: "
          f"ratio {t_step / t_plain:.2f}× (target ≤ 2×) {'OK' if t_step / t_plain <= 2 else 'MISSED'}")
    print(f"2. {args.k} samples batched {t_batched * 1000:.0f} ms vs sequential {t_seq * 1000:.0f} ms: "
          f"{t_seq / t_batched:.2f}× faster (target ≥ 2×) {'OK' if t_seq / t_batched >= 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
