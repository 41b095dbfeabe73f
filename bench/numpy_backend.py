"""NumPy backend benchmark: dlc's NumPy runtime against PyTorch eager on the same machine.

Workloads (the issue's targets, as ratios numpy / torch):
  ResNet-18, batch 1 and 8, 224x224 (specs/resnet18.dl)         <= 1.3x
  2-layer LSTM, input 128, hidden 256, batch 32, 100 steps        <= 2x
  self-attention, d 512, 8 heads, batch 8, 256 steps              <= 1.2x
  ResNet-34, batch 4, 224x224 (specs/resnet34.dl)                 <= 1.2x
  the same while another process keeps one core busy              <= 1.5x

The last, ``resnet34-4-busy``, starts a busy-loop process (bounded: it stops by itself after
``BUSY_SECONDS``, and is killed when the row is done) before timing either runtime: with 2
threads on 2 cores, one of each runtime's threads then shares its core. The NumPy backend
copes by sharing each convolution out as independent tasks among Python threads with a
single-threaded BLAS, which needs threadpoolctl (the header says whether it is installed);
without it, OpenBLAS's own threads wait on the shared core. The table prints each
workload's target beside its ratio.

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
imported, to compare with the AVX-512 kernels on such a CPU. Some machines set
OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) in their environment, because older OpenBLAS builds
fail on their CPU; a current NumPy then runs the older kernels (``Haswell`` on an AVX-512
CPU: about half of PyTorch's speed on convolutions). The header names the kernels OpenBLAS
actually runs (threadpoolctl's ``architecture``); to time the CPU's own, unset both for the
benchmark's command alone (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...``),
never in tests or CI.

Two more measurements, after the table:

* ResNet-18 batch 1 against ONNX's pure-NumPy reference evaluator
  (``onnx.reference.ReferenceEvaluator``) running the ONNX export of the same network with the
  same weights (``dlc.backends.onnx.to_model``) on the same input, with the same BLAS threads:
  target, dlc's NumPy backend >= 20x faster. The evaluator takes about half a second a call
  on a 2-core x86 machine, so it is timed as the fastest of 2 calls after a warm-up (its
  warm-up call alone if that takes over 10 s), in turn with the NumPy backend's ``--repeat``
  calls; ``--skip-reference`` leaves it out.
* Peak memory of one ResNet-18 batch-8 forward pass, NumPy backend against PyTorch eager (same
  weights, same thread count), each in a fresh subprocess of this script (``--child-memory``)
  so that neither inherits the other's allocator state. The child loads, compiles (or builds)
  the model and the input, drops dlc's weight dict (each side keeps what it runs with), then
  runs one batch-1 forward pass as a warm-up: that touches the one-time state of each runtime
  (OpenBLAS's per-thread buffers, oneDNN's kernels, lazily imported modules) without
  pre-faulting batch-8-sized memory. Then it hands freed memory back (glibc's ``malloc_trim``,
  so that the pass cannot reuse what setup freed without it counting) and resets the resident
  high-water mark (``5`` to /proc/self/clear_refs), reads VmRSS, runs the batch-8 pass once and
  reads the high-water mark (VmHWM) again: ``peak growth`` is the difference, the most memory
  the pass held at once above the loaded model. Not ru_maxrss: in a child it also keeps the
  high-water mark of the process it was forked from (the benchmark, with torch loaded), which
  no reset clears, so it rarely moves; the child still records it, for the record.
  ``cold growth`` is the same peak growth in another fresh child without the warm-up, so with
  those one-time buffers. Target: numpy / torch <= 1.5x, warm.

    python bench/numpy_backend.py [--repeat 10] [--threads 2] [--coretype SkylakeX]
                                  [--only resnet18-1 resnet18-8 lstm attention resnet34-4
                                          resnet34-4-busy]
                                  [--skip-reference] [--skip-memory]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the hand-written torch references live there

# Each workload's target: numpy / torch at most this.
TARGETS = {
    "resnet18-1": 1.3,
    "resnet18-8": 1.3,
    "lstm": 2.0,
    "attention": 1.2,
    "resnet34-4": 1.2,
    "resnet34-4-busy": 1.5,
}
BUSY_SECONDS = 600  # the busy loop's own bound, should the benchmark fail to kill it
BUSY_LOOP = "import time\nend = time.monotonic() + {}\nwhile time.monotonic() < end:\n    pass\n"
LSTM = "network LSTM2() {\n  input x: float32[N, T, 128]\n  lstm(256, layers=2)\n}\n"
ATTENTION = "network SelfAttention() {\n  input x: float32[N, T, 512]\n  attention(8)\n}\n"


def limit_threads(n: int):
    """Limit NumPy's BLAS to ``n`` threads: the environment variables for a NumPy not yet
    imported, and threadpoolctl (if installed) for one already loaded — it only reaches
    libraries in the process, so NumPy is imported first. Returns the limiter, if any."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    import numpy  # noqa: F401 - load its BLAS so that threadpoolctl can limit it

    return threadpool_limits(n)


def resnet18(rng):
    """ResNet-18 (specs/resnet18.dl) and its weights (``resnet``)."""
    return resnet("resnet18.dl", rng)


def resnet(spec: str, rng):
    """A ResNet of specs/ and its weights: dlc's ``init_weights`` with batchnorm statistics
    drawn from ``rng`` (that are not the identity)."""
    import numpy as np

    from dlc.compiler import load
    from dlc.runtime.weights import init_weights

    net = load(ROOT / "specs" / spec)
    w = init_weights(net, 0)
    for name, value in w.items():
        if name.endswith("running_mean"):
            w[name] = rng.normal(0, 0.1, value.shape).astype(np.float32)
        elif name.endswith("running_var"):
            w[name] = rng.uniform(0.5, 2, value.shape).astype(np.float32)
    return net, w


def copied(module, w):
    """``module`` with dlc's weights, matched by order and checked by shape."""
    import torch

    state = module.state_dict()
    assert len(state) == len(w)
    for (key, ref), value in zip(state.items(), w.values()):
        assert tuple(ref.shape) == value.shape, key
        state[key] = torch.from_numpy(value)
    module.load_state_dict(state)
    return module.eval()


def workloads(names):
    """(name, dlc network, weights, numpy inputs, torch callable, torch inputs) per workload."""
    import numpy as np
    import torch
    from reference_models import REFERENCES

    from dlc.compiler import load_source
    from dlc.runtime.weights import init_weights

    rng = np.random.default_rng(0)
    r18, r18_w = resnet18(rng)
    for batch in (1, 8):
        if f"resnet18-{batch}" in names:
            model = copied(REFERENCES["resnet18.dl"][0](), r18_w)
            x = rng.normal(size=(batch, 3, 224, 224)).astype(np.float32)
            yield f"resnet18-{batch}", r18, r18_w, (x,), model, (torch.from_numpy(x),)
    if {"resnet34-4", "resnet34-4-busy"} & set(names):
        net, w = resnet("resnet34.dl", rng)
        model = copied(REFERENCES["resnet34.dl"][0](), w)
        x = rng.normal(size=(4, 3, 224, 224)).astype(np.float32)
        for name in ("resnet34-4", "resnet34-4-busy"):
            if name in names:
                yield name, net, w, (x,), model, (torch.from_numpy(x),)
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
    names = list(TARGETS)
    parser.add_argument("--only", nargs="+", choices=names, default=names)
    parser.add_argument("--coretype", help="OPENBLAS_CORETYPE for NumPy's OpenBLAS")
    parser.add_argument(
        "--skip-reference", action="store_true", help="leave out ONNX's reference evaluator"
    )
    parser.add_argument("--skip-memory", action="store_true", help="leave out peak memory")
    parser.add_argument("--child-memory", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.coretype
    limiter = limit_threads(args.threads)
    if args.child_memory:
        print(json.dumps(child_memory(args.child_memory, args.threads, warm=not args.cold)))
        return
    import numpy as np
    import torch

    from dlc.backends.numpy import compile
    from dlc.compiler.ir.symbolic import evaluate

    torch.set_num_threads(args.threads)
    a = np.random.default_rng(0).normal(size=(2048, 2048)).astype(np.float32)
    peak = 2 * 2048**3 / fastest(lambda: a @ a, args.repeat) / 1e9
    threads = "threadpoolctl" if limiter is not None else "OPENBLAS_NUM_THREADS"
    print(
        f"{args.threads} threads (NumPy's via {threads}; OpenBLAS kernels: {kernels()}); "
        f"NumPy 2048^3 GEMM peak {peak:.1f} GFLOP/s"
    )
    print(f"{'workload':<15} {'numpy ms':>9} {'torch ms':>9} {'ratio':>6} {'target':>7} "
          f"{'GFLOP/s':>8} {'of peak':>8} {'max |diff|':>11}")  # fmt: skip
    for name, net, w, xs, model, txs in workloads(args.only):
        forward = compile(net, w)
        with torch.no_grad(), busy_core(name.endswith("-busy")):
            t_np, t_torch = fastest_pair(forward, xs, model, txs, args.repeat)
            diff = np.abs(forward(*xs) - model(*txs).numpy()).max()
        env = {"N": xs[0].shape[0], "T": xs[0].shape[1]}
        flops = 2 * evaluate(net.macs, env) * xs[0].shape[0]
        rate = flops / t_np / 1e9
        print(
            f"{name:<15} {t_np * 1e3:9.1f} {t_torch * 1e3:9.1f} {t_np / t_torch:6.2f} "
            f"{'<= ' + str(TARGETS[name]):>7} {rate:8.1f} {rate / peak:8.0%} {diff:11.2e}"
        )
    if not args.skip_reference:
        onnx_reference(args.repeat)
    if not args.skip_memory:
        peak_memory(args)


def kernels() -> str:
    """The kernels OpenBLAS runs (threadpoolctl's ``architecture``), and OPENBLAS_CORETYPE
    where it is set."""
    core = os.environ.get("OPENBLAS_CORETYPE")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return core or "as detected"
    found = [i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"]
    running = ", ".join(filter(None, found)) or "unknown"
    return f"{running} (OPENBLAS_CORETYPE={core})" if core else running


@contextlib.contextmanager
def busy_core(busy: bool):
    """While the block runs, a process that keeps one core busy (if ``busy``): a Python loop,
    bounded by ``BUSY_SECONDS`` of its own and killed when the block ends."""
    if not busy:
        yield
        return
    loop = subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(BUSY_SECONDS)])
    try:
        time.sleep(0.2)  # let it start and take its core
        yield
    finally:
        loop.kill()
        loop.wait()


def onnx_reference(repeat: int) -> None:
    """ResNet-18 batch 1: the NumPy backend against ``onnx.reference.ReferenceEvaluator``."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    from dlc.backends.numpy import compile
    from dlc.backends.onnx import to_model

    rng = np.random.default_rng(0)
    net, w = resnet18(rng)
    x = rng.normal(size=(1, 3, 224, 224)).astype(np.float32)  # resnet18-1's input
    forward = compile(net, w)
    model = to_model(net, w)
    evaluator = ReferenceEvaluator(model)
    feeds = {model.graph.input[0].name: x}
    t = time.perf_counter()
    (y_ref,) = evaluator.run(None, feeds)
    t_ref = time.perf_counter() - t  # the warm-up: the timing itself if over 10 s
    calls = 1 if t_ref > 10 else 2
    forward(x)
    t_np = best_ref = float("inf")
    for i in range(max(repeat, calls)):  # in turn, so that other work slows both alike
        t = time.perf_counter()
        forward(x)
        t_np = min(t_np, time.perf_counter() - t)
        if calls == 2 and i < calls:
            t = time.perf_counter()
            evaluator.run(None, feeds)
            best_ref = min(best_ref, time.perf_counter() - t)
    if calls == 2:
        t_ref = best_ref
    diff = np.abs(forward(x) - y_ref).max()
    assert diff < 1e-4, diff
    print()
    how = f"fastest of {calls} after a warm-up" if calls == 2 else "one call"
    print(f"against ONNX's reference evaluator (onnx.reference, {how}; numpy fastest of "
          f"{max(repeat, calls)}; target >= 20x)")  # fmt: skip
    print(f"{'workload':<12} {'numpy ms':>9} {'onnx-ref ms':>12} {'speed-up':>9} "
          f"{'max |diff|':>11}")  # fmt: skip
    print(
        f"{'resnet18-1':<12} {t_np * 1e3:9.1f} {t_ref * 1e3:12.1f} {t_ref / t_np:8.1f}x "
        f"{diff:11.2e}"
    )


def peak_memory(args) -> None:
    """ResNet-18 batch 8: each runtime's peak memory growth, each in fresh subprocesses."""
    command = [sys.executable, __file__, "--threads", str(args.threads), "--child-memory"]
    if args.coretype:
        command[2:2] = ["--coretype", args.coretype]
    result = {}
    for runtime in ("numpy", "torch"):
        for cold in (False, True):
            child = subprocess.run(
                command + [runtime] + ["--cold"] * cold, capture_output=True, text=True
            )
            if child.returncode:
                sys.exit(f"the {runtime} memory child failed:\n{child.stderr}")
            result[runtime, cold] = json.loads(child.stdout.splitlines()[-1])
    print()
    print(
        "peak memory, resnet18-8, one forward pass in a fresh process "
        "(MB; after a batch-1 warm-up; target numpy/torch <= 1.5x)"
    )
    print(f"{'runtime':<12} {'RSS before':>11} {'peak growth':>12} "
          f"{'cold growth':>12}")  # fmt: skip
    for runtime in ("numpy", "torch"):
        r, c = result[runtime, False], result[runtime, True]
        print(f"{runtime:<12} {r['rss_before']:11.1f} {r['growth']:12.1f} {c['growth']:12.1f}")
    if not all(r["hwm_reset"] for r in result.values()):
        print("(/proc/self/clear_refs not writable: the high-water mark includes setup's, so a"
              " growth of 0 means a peak hidden by setup's)")  # fmt: skip
    ratio = result["numpy", False]["growth"] / result["torch", False]["growth"]
    cold = result["numpy", True]["growth"] / result["torch", True]["growth"]
    print(f"{'numpy/torch':<12} {'':>11} {ratio:11.2f}x {cold:11.2f}x")


def proc_status_mb(field: str) -> float:
    """A field of /proc/self/status in kB (VmRSS, VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def maxrss_mb() -> float:
    """This process's resident high-water mark (ru_maxrss, KiB on Linux), in MB: across
    exec too, so in a child of a large process, the parent's."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settle_memory() -> bool:
    """Hand the memory freed so far back to the system (glibc's ``malloc_trim``) and reset the
    resident high-water mark to the resident set (``5`` to /proc/self/clear_refs, Linux 4.0+);
    False where the mark could not be reset."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def child_memory(runtime: str, threads: int, warm: bool) -> dict:
    """In a fresh process: the memory one ResNet-18 batch-8 forward pass of ``runtime`` takes
    above the loaded model and input (see the module's docstring)."""
    import numpy as np

    rng = np.random.default_rng(0)
    net, w = resnet18(rng)
    x1 = rng.normal(size=(1, 3, 224, 224)).astype(np.float32)
    x8 = rng.normal(size=(8, 3, 224, 224)).astype(np.float32)
    if runtime == "numpy":
        from dlc.backends.numpy import compile

        forward = compile(net, w)
    else:
        import torch
        from reference_models import REFERENCES

        torch.set_num_threads(threads)
        torch.set_grad_enabled(False)
        model = copied(REFERENCES["resnet18.dl"][0](), w)
        x1, x8 = torch.from_numpy(x1), torch.from_numpy(x8)

        def forward(x):
            return model(x)

    del w  # each side keeps only what it runs with: the plan's arrays, the module's tensors
    if warm:
        forward(x1)
    reset = settle_memory()
    rss_before, hwm_before = proc_status_mb("VmRSS"), proc_status_mb("VmHWM")
    maxrss_before = maxrss_mb()
    y = forward(x8)
    hwm_after, maxrss_after = proc_status_mb("VmHWM"), maxrss_mb()
    assert y.shape == (8, 1000)
    return {
        "rss_before": rss_before,
        "growth": hwm_after - rss_before if reset or hwm_after > hwm_before else 0.0,
        "hwm_reset": reset,
        # for the record only: ru_maxrss also keeps the parent's high-water mark from
        # before exec (subprocess forks this process from the benchmark's), so it rarely moves
        "maxrss_delta": maxrss_after - maxrss_before,
    }


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
