"""PyTorch backend benchmark: forward time of ``build``'s module against the hand-written
model of tests/reference_models.py (and the emitted source), same weights, same run.

The three run interleaved, one call each in turn, so that a noisy machine slows them alike;
times are medians over ``--repeat`` rounds, in inference mode, and the ratio built / hand
is given for the medians and for the best rounds (the steadier on a shared machine). CPU
with 2 threads; then CUDA, if there is one. The target is a ratio of at most 1.03.

    python bench/torch_backend.py [--repeat 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the hand-written references live there

from reference_models import REFERENCES  # noqa: E402

from dlc.backends.torch import build  # noqa: E402
from dlc.backends.torch_source import emit  # noqa: E402
from dlc.compiler import load  # noqa: E402
from dlc.runtime.weights import init_weights  # noqa: E402

# spec, batch, inputs of that batch
CASES = [
    ("resnet18.dl", 8, lambda n: (torch.randn(n, 3, 224, 224),)),
    ("sentiment_lstm.dl", 8, lambda n: (torch.randint(0, 20000, (n, 64)),)),
    ("tiny_transformer.dl", 8, lambda n: (torch.randint(0, 1000, (n, 64)),)),
]


def models(name: str, device: str):
    """(built, hand-written, emitted), all with the same weights, in eval mode."""
    net = load(ROOT / "specs" / name)
    built = build(net, init_weights(net, 0))
    ref = REFERENCES[name][0]()
    ref.load_state_dict(dict(zip(ref.state_dict(), built.state_dict().values())))
    namespace: dict = {}
    exec(compile(emit(net), name, "exec"), namespace)
    emitted = namespace[net.name]()
    emitted.load_state_dict(built.state_dict())
    return [m.to(device).eval() for m in (built, ref, emitted)]


def timed(model, xs, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    model(*xs)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def bench(device: str, repeat: int) -> None:
    print(f"\n{device}" + (f", {torch.get_num_threads()} threads" if device == "cpu" else ""))
    print(
        f"{'model':20} {'batch':>5} {'built ms':>9} {'hand ms':>9} {'emitted ms':>10} "
        f"{'ratio':>6} {'(best)':>6}"
    )
    for name, batch, inputs in CASES:
        ms = models(name, device)
        torch.manual_seed(0)
        xs = [x.to(device) for x in inputs(batch)]
        times: list[list[float]] = [[], [], []]
        with torch.inference_mode():
            outs = [m(*xs) for m in ms]  # the three must agree
            for out in outs[1:]:
                torch.testing.assert_close(out, outs[0], rtol=1e-4, atol=1e-4)
            for _ in range(3):  # warm-up: allocator, oneDNN primitive caches
                for m in ms:
                    m(*xs)
            for _ in range(repeat):
                for t, m in zip(times, ms):
                    t.append(timed(m, xs, device))
        built, hand, emitted = (statistics.median(t) * 1e3 for t in times)
        best = min(times[0]) / min(times[1])
        print(
            f"{name.removesuffix('.dl'):20} {batch:>5} {built:>9.2f} {hand:>9.2f} "
            f"{emitted:>10.2f} {built / hand:>6.3f} {best:>6.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}; ratio: built / hand-written (target <= 1.03)")
    bench("cpu", args.repeat)
    if torch.cuda.is_available():
        bench("cuda", args.repeat * 5)


if __name__ == "__main__":
    main()
