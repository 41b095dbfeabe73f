"""Time per epoch of `dlc train` against a hand-written PyTorch loop, in one run.

Both train the same module (built from the same spec and initial weights), on the same
data in memory, with the same batch and optimiser, no augmentation and no validation:
the hand loop is the minimal one (a seeded permutation, index, forward, loss, backward,
step). Cases: the digits example (specs/digits.dl) and a ResNet-18 on 32x32 synthetic
images. Also reported: the share of an epoch that batching takes (data loading).

    python bench/training.py [--epochs 4] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlc.backends.torch import build
from dlc.runtime.weights import init_weights
from dlc.training import fit
from dlc.training.setup import prepare

ROOT = Path(__file__).resolve().parent.parent

RECIPE = """
train Bench(epochs = 4) {{
  model = {model}
  data = npz("{data}", {inputs}target = "labels")
  loss = cross_entropy
  optimizer = sgd(0.05, momentum = 0.9)
  batch = {batch}
  epochs = epochs
}}
"""

RESNET = """
import "{resnet}"
network ResNet18Small(classes = 10) {{
  input x: float32[N, 3, 32, 32]
  conv2d(64, 3, padding=1, bias=false); batchnorm; relu
  for c, s in [(64, 1), (128, 2), (256, 2), (512, 2)] {{
    basic(c, s)
    basic(c)
  }}
  global_avgpool
  dense(classes)
}}
"""


def cases(folder: Path) -> list[tuple[str, Path]]:
    digits = folder / "digits.dl"
    net = (ROOT / "specs" / "digits.dl").read_text().split("train DigitsSGD")[0]
    data = ROOT / "specs" / "data" / "digits.npz"
    digits.write_text(
        net + RECIPE.format(model="DigitNet", data=data, inputs='images = "images", ', batch=64)
    )
    rng = np.random.default_rng(0)
    np.savez(
        folder / "synthetic.npz",
        x=rng.normal(size=(512, 3, 32, 32)).astype(np.float32),
        labels=rng.integers(0, 10, 512),
    )
    resnet = folder / "resnet.dl"
    resnet.write_text(
        RESNET.format(resnet=ROOT / "specs" / "resnet18.dl")
        + RECIPE.format(model="ResNet18Small", data=folder / "synthetic.npz", inputs="", batch=64)
    )
    return [
        ("digits (DigitNet, 1,437 examples, batch 64)", digits),
        ("ResNet-18 32x32 (512 synthetic, batch 64)", resnet),
    ]


def hand_loop(path: Path, epochs: int, device: torch.device) -> tuple[list[float], float]:
    """The minimal loop; returns the epoch times and the batching share of an epoch."""
    plan = prepare(path)
    net = plan.network
    model = build(net, init_weights(net, seed=0), check_inputs=False).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.from_numpy(next(iter(plan.train.inputs.values()))).to(device)
    y = torch.from_numpy(plan.train.target).to(device)
    n, batch = len(y), plan.recipe.batch
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).to(device)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, n, batch):  # batching alone, as dlc does it
        idx = perm[i : i + batch]
        x.index_select(0, idx), y.index_select(0, idx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return times, (time.perf_counter() - start) / statistics.median(times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    device = torch.device(a.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    with tempfile.TemporaryDirectory() as tmp:
        for title, path in cases(Path(tmp)):
            hand, batching = hand_loop(path, a.epochs, device)
            start = time.perf_counter()
            res = fit(path, out=Path(tmp) / f"run-{path.stem}", device=a.device, epochs=a.epochs)
            whole = time.perf_counter() - start
            ours = [h["time"] for h in res.history]
            steady_ours, steady_hand = statistics.median(ours[1:]), statistics.median(hand[1:])
            print(f"\n{title}, {a.epochs} epochs")
            print(f"  hand-written loop   {steady_hand * 1e3:9.1f} ms/epoch")
            ratio = steady_ours / steady_hand
            print(f"  dlc train           {steady_ours * 1e3:9.1f} ms/epoch   ratio {ratio:.3f}x")
            print(
                f"  whole run (dlc: data read, build, checkpoints, metrics.csv, curves): "
                f"{whole:.2f} s vs {sum(hand):.2f} s of epochs"
            )
            print(f"  batching (index_select) share of an epoch: {batching:.1%}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
