"""ONNX backend benchmark: dlc's direct export against torch.onnx.export of the same model.

For ResNet-18, ResNet-34, SentimentLSTM and TinyTransformer (the specs in specs/ and their
hand-written torch models in tests/reference_models.py, carrying the same weights), measured
in this one run on this machine:
  1. export time: ``dlc.backends.onnx.export`` (checker and shape check included) against
     ``torch.onnx.export(..., dynamo=True)`` (falling back to the TorchScript exporter, and
     saying so, when the dynamo exporter is missing or fails), and their ratio, which should
     be at least ``TARGET`` on both ResNets;
  2. onnxruntime latency of each graph at batch 1 and 8 (T = 32 for the text models);
  3. node counts as exported and after onnxruntime's extended graph optimisations, and
     file sizes; and that both graphs compute the same outputs.

    python bench/onnx_backend.py [--repeat 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
from timing import median_time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the hand-written torch references live there

OPSET = 18  # the oldest opset the dynamo exporter writes; both exporters use it
LENGTH = 32
TARGET = 20  # torch's export time / dlc's, wanted on the models below
TARGET_MODELS = ("ResNet-18", "ResNet-34")
MODELS = [
    ("ResNet-18", "resnet18.dl"),
    ("ResNet-34", "resnet34.dl"),
    ("SentimentLSTM", "sentiment_lstm.dl"),
    ("TinyTransformer", "tiny_transformer.dl"),
]


def interleaved(fns: dict, repeat: int) -> dict[str, float]:
    """Median wall time of each of ``fns``, run in turn ``repeat`` times (after a warm-up),
    so that a slow spell of a shared machine hits all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeat + 1):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            if i:
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def inputs_for(net, batch: int, gen: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for name, t in net.inputs.items():
        shape = [
            batch if str(d) == "N" else LENGTH if not isinstance(d, int) else d for d in t.shape
        ]
        if t.dtype.startswith("int"):
            vocab = min(n.attrs["vocab"] for n in net.graph.nodes if name in n.inputs)
            feeds[name] = gen.integers(0, vocab, shape).astype(t.dtype)
        else:
            feeds[name] = gen.standard_normal(shape).astype(t.dtype)
    return feeds


def reference_with(spec: str, net, weights):
    """The hand-written torch model carrying dlc's weights (matched by order and shape)."""
    import torch
    from reference_models import REFERENCES

    model = REFERENCES[spec][0]().eval()
    state = model.state_dict()
    ours = [weights[k] for k, _ in net.graph.params()]
    assert [tuple(v.shape) for v in state.values()] == [w.shape for w in ours], spec
    model.load_state_dict({k: torch.from_numpy(w) for k, w in zip(state, ours)})
    return model


def torch_export(model, net, feeds, path: str) -> str:
    """Export with the dynamo exporter, else TorchScript's; the exporter's name."""
    import torch

    args = tuple(torch.from_numpy(v) for v in feeds.values())
    names = list(net.inputs)
    axes = {
        n: {i: str(d) for i, d in enumerate(t.shape) if not isinstance(d, int)}
        for n, t in net.inputs.items()
    }
    quiet = io.StringIO()

    def export(**how) -> None:
        with redirect_stdout(quiet), redirect_stderr(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                args,
                path,
                opset_version=OPSET,
                input_names=names,
                output_names=list(net.outputs),
                **how,
            )

    try:
        dims = {
            n: {i: torch.export.Dim(s, min=2, max=4096) for i, s in a.items()}
            for n, a in axes.items()
        }
        export(dynamo=True, dynamic_shapes=tuple(dims.values()))
        return "dynamo"
    except Exception as exc:  # no onnxscript, or the dynamo exporter fails on the model
        reason = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
        export(dynamo=False, dynamic_axes=axes)
        return f"torchscript (dynamo failed: {reason})"


def session(path: str, threads: int, optimized: str | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = optimized
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def node_count(path: str) -> int:
    import onnx

    return len(onnx.load(path, load_external_data=False).graph.node)


def measure(title: str, spec: str, args, tmp: str) -> tuple[dict[str, str], str, float]:
    """One model's row of the table, the exporter torch used, and torch's export time / dlc's."""
    import torch

    from dlc.backends.onnx import export
    from dlc.compiler import load
    from dlc.runtime.weights import init_weights

    net = load(ROOT / "specs" / spec)
    weights = init_weights(net, seed=0)
    model = reference_with(spec, net, weights)
    ours, theirs = os.path.join(tmp, "dlc.onnx"), os.path.join(tmp, "torch.onnx")
    dlc_s = median_time(functools.partial(export, net, weights, ours, OPSET), args.exports)
    gen = np.random.default_rng(0)
    feeds = {b: inputs_for(net, b, gen) for b in (1, 8)}
    # Batch 8, not 1: torch.export specialises a dim whose example is 1 to a constant. The
    # first export pays torch's one-off costs; the second, warm one is the fair comparison.
    first_s, torch_s = [], []
    for times in (first_s, torch_s):
        t = time.perf_counter()
        exporter = torch_export(model, net, feeds[8], theirs)
        times.append(time.perf_counter() - t)
    first_s, torch_s = first_s[0], torch_s[0]
    row = {"model": title, "export dlc": f"{dlc_s * 1e3:.0f} ms"}
    row["torch first"] = f"{first_s:.2f} s"
    row["torch warm"] = f"{torch_s:.2f} s"
    row["warm/dlc"] = f"{torch_s / dlc_s:.1f}x"
    row["exporter"] = exporter.split()[0]
    runs = {
        label: session(path, args.threads) for label, path in (("dlc", ours), ("torch", theirs))
    }
    for b, feed in feeds.items():
        calls = {label: functools.partial(run.run, None, feed) for label, run in runs.items()}
        for label, seconds in interleaved(calls, args.repeat).items():
            row[f"b{b} {label}"] = f"{seconds * 1e3:.2f} ms"
    with torch.no_grad():
        ref = model(*(torch.from_numpy(v) for v in feeds[8].values())).numpy()
    diff = max(float(np.abs(run.run(None, feeds[8])[0] - ref).max()) for run in runs.values())
    for label, path in (("dlc", ours), ("torch", theirs)):
        row[f"nodes {label}"] = str(node_count(path))
    for label, path in (("dlc", ours), ("torch", theirs)):
        optimized = os.path.join(tmp, f"{label}.opt.onnx")
        session(path, args.threads, optimized=optimized)
        row[f"opt {label}"] = str(node_count(optimized))
    for label, path in (("dlc", ours), ("torch", theirs)):
        data = [p for p in (path, f"{path}.data") if os.path.exists(p)]  # torch's weights
        row[f"MB {label}"] = f"{sum(map(os.path.getsize, data)) / 1e6:.1f}"
    row["max |diff|"] = f"{diff:.1e}"
    return row, exporter, torch_s / dlc_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="runs per latency")
    parser.add_argument("--exports", type=int, default=3, help="dlc exports per export time")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, opset {OPSET}, "
        f"{args.threads} threads, T = {LENGTH}; medians of {args.repeat} runs\n"
    )
    rows, notes, ratios = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for title, spec in MODELS:
            row, exporter, ratios[title] = measure(title, spec, args, tmp)
            rows.append(row)
            if exporter != "dynamo":
                notes.append(f"{title}: {exporter}")
    head = list(rows[0])
    widths = [max(len(c), *(len(r[c]) for r in rows)) for c in head]
    print("  ".join(c.rjust(w) for c, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(
            "  ".join(
                r[c].ljust(w) if c == "model" else r[c].rjust(w) for c, w in zip(head, widths)
            )
        )
    print(f"\nexport dlc: median of {args.exports} after a warm-up, checks included; torch")
    print("first / warm: its first export and the one after it; warm/dlc: the ratio judged.")
    print("b1/b8: onnxruntime latency at batch 1/8. opt: nodes after onnxruntime's extended")
    print("optimisations. max |diff|: both graphs vs the torch model.")
    print(target_line(ratios))
    for note in notes:
        print("note:", note)


def target_line(ratios: dict[str, float]) -> str:
    """Whether dlc's export beat torch's by TARGET times on each of TARGET_MODELS."""
    shown = ", ".join(f"{m} {ratios[m]:.1f}x" for m in TARGET_MODELS)
    met = all(ratios[m] >= TARGET for m in TARGET_MODELS)
    return (
        f"target: dlc exports >= {TARGET}x faster than torch: {shown}: {'met' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
