"""NumPy backend benchmark: dlc's NumPy runtime against PyTorch eager on the same machine.

Workloads (the issue's targets, as ratios numpy / torch):
  ResNet-18, batch 1 and 8, 224x224 (specs/resnet18.dl)         <= 1.3x
  2-layer LSTM, input 128, hidden 256, batch 32, 100 steps        <= 2x
  self-attention, d 512, 8 heads, batch 8, 256 steps              <= 1.2x

Both sides run the same weights (dlc's ``init_weights``, copied into the torch modules) on
the same inputs, in eval mode, with 2 threads: torch.set_num_threads(2), and for NumPy's
BLAS threadpoolctl when installed, else OPENBLAS_NUM_THREADS / OMP_NUM_THREADS /
MKL_NUM_THREADS set before NumPy is imported (which is why this module imports NumPy late).
Timings alternate between the two runtimes, one call each in turn, and report the fastest
call of each (the least disturbed by other work on the machine); ``GFLOP/s`` counts
2 x MACs (the compiler's count) and ``of peak`` compares it with a 2048^3 float32 GEMM timed
by the same NumPy.

NumPy's wheels bundle OpenBLAS, which picks its kernels from the CPU it recognises and
falls back to older ones on a CPU it does not (on AMD Zen 5, its AVX2 "Haswell" kernels,
half the speed of AVX-512). ``--coretype SkylakeX`` sets OPENBLAS_CORETYPE before NumPy is
imported, to compare with the AVX-512 kernels on such a CPU.

    python bench/numpy_backend.py [--repeat 10] [--threads 2] [--coretype SkylakeX]
                                  [--only resnet18-1 resnet18-8 lstm attention]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the hand-written torch references live there

LSTM = "network LSTM2() {\n  input x: float32[N, T, 128]\n  lstm(256, layers=2)\n}\n"
ATTENTION = "network SelfAttention() {\n  input x: float32[N, T, 512]\n  attention(8)\n}\n"


def limit_threads(n: int):
    """Limit NumPy's BLAS to ``n`` threads; returns the threadpoolctl limiter, if any."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
        return None
    return threadpool_limits(n)


def workloads(names):
    """(name, dlc network, weights, numpy inputs, torch callable, torch inputs) per workload."""
    import numpy as np
    import torch
    from reference_models import REFERENCES

    from dlc.compiler import load, load_source
    from dlc.compiler.weights import init_weights

    rng = np.random.default_rng(0)

    def copied(module, w):
        """``module`` with dlc's weights, matched by order and checked by shape."""
        state = module.state_dict()
        assert len(state) == len(w)
        for (key, ref), value in zip(state.items(), w.values()):
            assert tuple(ref.shape) == value.shape, key
            state[key] = torch.from_numpy(value)
        module.load_state_dict(state)
        return module.eval()

    resnet = load(ROOT / "specs" / "resnet18.dl")
    resnet_w = init_weights(resnet, 0)
    for name, value in resnet_w.items():  # statistics that are not the identity
        if name.endswith("running_mean"):
            resnet_w[name] = rng.normal(0, 0.1, value.shape).astype(np.float32)
        elif name.endswith("running_var"):
            resnet_w[name] = rng.uniform(0.5, 2, value.shape).astype(np.float32)
    for batch in (1, 8):
        if f"resnet18-{batch}" in names:
            model = copied(REFERENCES["resnet18.dl"][0](), resnet_w)
            x = rng.normal(size=(batch, 3, 224, 224)).astype(np.float32)
            yield f"resnet18-{batch}", resnet, resnet_w, (x,), model, (torch.from_numpy(x),)
    if "lstm" in names:
        net = load_source(LSTM)
        w = init_weights(net, 0)
        model = copied(torch.nn.LSTM(128, 256, num_layers=2, batch_first=True), w)
        x = rng.normal(size=(32, 100, 128)).astype(np.float32)
        yield "lstm", net, w, (x,), lambda x: model(x)[0], (torch.from_numpy(x),)
    if "attention" in names:
        net = load_source(ATTENTION)
        w = init_weights(net, 0)
        model = copied(torch.nn.MultiheadAttention(512, 8, batch_first=True), w)
        x = rng.normal(size=(8, 256, 512)).astype(np.float32)
        yield (
            "attention",
            net,
            w,
            (x,),
            lambda x: model(x, x, x, need_weights=False)[0],
            (torch.from_numpy(x),),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    names = ["resnet18-1", "resnet18-8", "lstm", "attention"]
    parser.add_argument("--only", nargs="+", choices=names, default=names)
    parser.add_argument("--coretype", help="OPENBLAS_CORETYPE for NumPy's OpenBLAS")
    args = parser.parse_args()

    if args.coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.coretype
    limiter = limit_threads(args.threads)
    import numpy as np
    import torch

    from dlc.backends.numpy import compile
    from dlc.compiler.symbolic import evaluate

    torch.set_num_threads(args.threads)
    a = np.random.default_rng(0).normal(size=(2048, 2048)).astype(np.float32)
    peak = 2 * 2048**3 / fastest(lambda: a @ a, args.repeat) / 1e9
    threads = "threadpoolctl" if limiter is not None else "OPENBLAS_NUM_THREADS"
    core = os.environ.get("OPENBLAS_CORETYPE", "as detected")
    print(
        f"{args.threads} threads (NumPy's via {threads}; OpenBLAS kernels: {core}); "
        f"NumPy 2048^3 GEMM peak {peak:.1f} GFLOP/s"
    )
    print(f"{'workload':<12} {'numpy ms':>9} {'torch ms':>9} {'ratio':>6} {'GFLOP/s':>8} "
          f"{'of peak':>8} {'max |diff|':>11}")  # fmt: skip
    for name, net, w, xs, model, txs in workloads(args.only):
        forward = compile(net, w)
        with torch.no_grad():
            t_np, t_torch = fastest_pair(forward, xs, model, txs, args.repeat)
            diff = np.abs(forward(*xs) - model(*txs).numpy()).max()
        env = {"N": xs[0].shape[0], "T": xs[0].shape[1]}
        flops = 2 * evaluate(net.macs, env) * xs[0].shape[0]
        rate = flops / t_np / 1e9
        print(
            f"{name:<12} {t_np * 1e3:9.1f} {t_torch * 1e3:9.1f} {t_np / t_torch:6.2f} "
            f"{rate:8.1f} {rate / peak:8.0%} {diff:11.2e}"
        )


def fastest(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def fastest_pair(f, xs, g, ys, repeat: int) -> tuple[float, float]:
    """The fastest call of ``f(*xs)`` and of ``g(*ys)``, called in turn (after a warm-up)."""
    f(*xs), g(*ys)
    best_f = best_g = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f(*xs)
        best_f = min(best_f, time.perf_counter() - t)
        t = time.perf_counter()
        g(*ys)
        best_g = min(best_g, time.perf_counter() - t)
    return best_f, best_g


if __name__ == "__main__":
    main()
