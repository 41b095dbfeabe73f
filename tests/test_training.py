"""Training recipes end to end (LANGUAGE §11): tiny networks on tiny data, checked against
independent references — torch.nn.functional's losses, torch.optim.lr_scheduler's rates,
a hand-written PyTorch loop — and for the run's promises: determinism, exact resume,
early stopping, Ctrl-C, located errors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file

from dlc.compiler.cli import main
from dlc.compiler.errors import DlcError
from dlc.compiler.recipe.recipe import FnCall
from dlc.compiler.recipe.schema import FUNCTIONS
from dlc.training import evaluate, fit
from dlc.training.objectives import loss_sums, metric_sums
from dlc.training.schedules import Schedule

NET = """
network Mlp(hidden = 16) {
  input x: float32[N, 6]
  dense(hidden) | tanh | dense(3)
}
network Heads {
  input x: float32[N, 6]
  h = dense(16) | tanh
  main = h | dense(3)
  aux = h | dense(3)
  output main, aux
}
"""


def recipe(body: str, params: str = "lr = 0.1, epochs = 4") -> str:
    return NET + f"train Fit({params}) {{\n{body}\n}}\n"


BASE = """
  model = Mlp
  data = npz("data.npz", target = "y")
  val = 0.25
  loss = cross_entropy
  metrics = [accuracy]
  optimizer = sgd(lr, momentum = 0.9)
  batch = 16
  epochs = epochs
"""


def write_data(folder: Path, n: int = 96, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    np.savez(folder / "data.npz", x=x, y=y)


@pytest.fixture
def spec(tmp_path):
    write_data(tmp_path)

    def make(body: str = BASE, params: str = "lr = 0.1, epochs = 4") -> Path:
        path = tmp_path / "fit.dl"
        path.write_text(recipe(body, params))
        return path

    return make


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    return load_file(run_dir / "weights.safetensors")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ---- the run's promises ---------------------------------------------------------------


def test_trains_and_writes_the_run(spec, tmp_path):
    res = fit(spec(), out=tmp_path / "run")
    run = tmp_path / "run"
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert res.history[-1]["train.loss"] < res.history[0]["train.loss"]
    doc = json.loads((run / "recipe.json").read_text())
    assert doc["recipe"]["optimizer"]["args"]["momentum"] == 0.9
    assert doc["data"] == {"train": 72, "val": 24, "test": 0}
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == [
        "epoch",
        "train.loss",
        "train.accuracy",
        "val.loss",
        "val.accuracy",
        "lr",
        "time",
    ]
    assert same(weights(run), res.weights)
    assert len(list((run / "checkpoints").iterdir())) == 2  # checkpoint(keep = 2)


def test_same_seed_same_weights_bit_for_bit(spec, tmp_path):
    path = spec(BASE + "  deterministic = true\n  augment = [noise(0.1)]")
    a = fit(path, out=tmp_path / "a")
    b = fit(path, out=tmp_path / "b")
    assert same(a.weights, b.weights)
    other = fit(spec(BASE + "  seed = 1"), out=tmp_path / "d")
    assert not same(a.weights, other.weights)


def test_resume_continues_exactly(spec, tmp_path):
    """Two epochs, stop, two more: the weights of four epochs in one go, bit for bit (a
    schedule that does not depend on the number of epochs, so that both runs share it)."""
    body = BASE + "  schedule = step(every = 1, gamma = 0.5)\n  augment = [noise(0.1)]\n"
    path = spec(body)
    whole = fit(path, out=tmp_path / "whole", epochs=4)
    part = fit(path, out=tmp_path / "part", epochs=2)
    assert len(part.history) == 2
    rest = fit(path, resume=tmp_path / "part", epochs=4)
    assert same(whole.weights, rest.weights)
    assert [h["train.loss"] for h in rest.history] == [h["train.loss"] for h in whole.history]


def test_ctrl_c_saves_and_resume_is_exact(spec, tmp_path):
    """A real SIGINT to `dlc train` mid-run: exit 130 with a checkpoint, and resuming gives
    the uninterrupted run's weights bit for bit, wherever it stopped."""
    path = spec(
        BASE + "  schedule = cosine(warmup = 1)\n  augment = [noise(0.05)]", "lr = 0.1, epochs = 30"
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "dlc", "train", str(path), "--device", "cpu"]
    proc = subprocess.Popen(
        [*cmd, "-o", str(tmp_path / "cut")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ckpts = tmp_path / "cut" / "checkpoints"
    deadline = time.monotonic() + 60
    while not (ckpts.is_dir() and any(ckpts.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "--resume" in out
    subprocess.run(
        [*cmd, "--resume", str(tmp_path / "cut")], env=env, check=True, capture_output=True
    )
    whole = fit(path, out=tmp_path / "whole", device="cpu")
    assert same(weights(tmp_path / "cut"), whole.weights)


def test_early_stop_restores_the_best_weights(spec, tmp_path):
    body = BASE + '  early_stop(monitor = "val.loss", patience = 2)\n'
    res = fit(spec(body, "lr = 2.5, epochs = 40"), out=tmp_path / "run")
    losses = [h["val.loss"] for h in res.history]
    best = int(np.argmin(losses))
    assert res.stopped_early and len(losses) == best + 1 + 2  # two epochs without progress
    assert res.best["epoch"] == best
    assert same(res.weights, load_file(tmp_path / "run" / "best.safetensors"))
    scores = evaluate(
        spec(body, "lr = 2.5, epochs = 40"),
        weights=tmp_path / "run" / "weights.safetensors",
        data=FnCall("npz", {"path": str(tmp_path / "data.npz"), "target": "y", "arrays": {}}),
    )
    assert scores["examples"] == 96


def test_matches_a_hand_written_loop(spec, tmp_path):
    """The recipe's run equals a plain PyTorch loop over the same data order, module and
    optimiser: plain SGD, constant rate, no augmentation."""
    from dlc.backends.torch import build
    from dlc.compiler import load
    from dlc.runtime.weights import init_weights
    from dlc.training.loop import _generator

    res = fit(spec(BASE.replace("val = 0.25", "")), out=tmp_path / "run", epochs=3)
    net = load(tmp_path / "fit.dl", "Mlp")
    model = build(net, init_weights(net, seed=0))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = np.load(tmp_path / "data.npz")
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    for epoch in range(3):
        perm = torch.randperm(96, generator=_generator(0, epoch, 0))
        for i in range(0, 96, 16):
            idx = perm[i : i + 16]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(res.weights[k], v.numpy(), rtol=1e-5, atol=1e-6)


def test_two_processes_match_one(spec, tmp_path):
    """--nproc 2 (gloo, CPU): the same global batches, so the same loss curve; the
    network's second output, which no loss reads, gets no gradient (DDP is told)."""
    path = spec(BASE.replace("model = Mlp", "model = Heads") + "  augment = [noise(0.05)]")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "dlc", "train", str(path), "--device", "cpu"]
    done = subprocess.run(
        [*cmd, "--nproc", "2", "-o", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    one = fit(path, out=tmp_path / "one", device="cpu")
    two = (tmp_path / "two" / "metrics.csv").read_text().splitlines()[1:]
    for h, line in zip(one.history, two):
        cells = line.split(",")
        assert math.isclose(float(cells[1]), h["train.loss"], rel_tol=1e-4)
        assert math.isclose(float(cells[3]), h["val.loss"], rel_tol=1e-4)
    assert len(two) == len(one.history)
    for k, v in weights(tmp_path / "two").items():
        np.testing.assert_allclose(v, one.weights[k], rtol=1e-3, atol=1e-5)


# ---- the language: located errors before any data is read ---------------------------------


@pytest.mark.parametrize(
    "line, message",
    [
        ("  lerning_rate = 0.1", "unknown recipe key 'lerning_rate'"),
        ("  optimizer = sgd(lr, momentm = 0.9)", "did you mean 'momentum'"),
        ("  optimizer = sgd()", "needs the argument 'lr'"),
        ("  optimizer = cross_entropy", "expected an optimizer"),
        ("  batch = 0", "batch: expected an integer ≥ 1, got 0"),
        ('  precision = "fp8"', 'one of "fp32", "bf16", "fp16"'),
        ("  model = Mlpp", "did you mean 'Mlp'"),
        ('  early_stop(monitor = "val.acc")', "did you mean 'val.accuracy'"),
        ("  val = 1.5", "a fraction in (0, 1)"),
        ('  loss = cross_entropy(output = "aux")', "has no output 'aux'"),
        ("  metrics = [top_k(5)]", "top_k(5) of 3 classes"),
        ("  augment = [rotate(10)]", "needs an input of rank ≥ 4"),
        ("  loss = cross_entropy - mse", "not '-'"),
        ("  optimizer = sgd(lr, nesterov = true)", "needs momentum > 0"),
        ("  repeat 2 { batch = 3 }", "has no meaning in a train section"),
    ],
)
def test_recipe_mistakes_are_located(spec, capsys, line, message):
    path = spec(BASE + line)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err
    n = recipe(BASE + line).splitlines().index(line) + 1
    assert f"fit.dl:{n}:" in err


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((8, 5), np.float32), "y": np.zeros(8, np.int64)}, "axis 1"),
        ({"x": np.zeros((8, 6), np.float32), "y": np.zeros(7, np.int64)}, "examples"),
        ({"x": np.zeros((8, 6), np.float32), "y": np.full(8, 3)}, "holds class 3"),
        ({"x": np.zeros((8, 6), np.float32), "y": np.zeros((8, 2), np.int64)}, "needs class ids"),
        ({"x": np.zeros((8, 6, 1), np.float32), "y": np.zeros(8, np.int64)}, "rank"),
    ],
)
def test_data_that_does_not_fit_is_located(spec, tmp_path, capsys, arrays, message):
    path = spec()
    np.savez(tmp_path / "data.npz", **arrays)
    assert main(["train", str(path), "-o", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert message in err and "fit.dl:" in err
    assert not (tmp_path / "run").exists()  # nothing written before the checks pass


def test_a_previous_run_is_never_overwritten(spec, tmp_path, capsys):
    path = spec()
    fit(path, out=tmp_path / "run", epochs=1)
    assert main(["train", str(path), "-o", str(tmp_path / "run")]) == 2
    assert "--resume" in capsys.readouterr().err


# ---- independent references: torch's losses, metrics and schedulers -------------------------


def _call(kind: str, name: str, **args) -> FnCall:
    fn = FUNCTIONS[kind][name]
    full = {p.name: args.get(p.name, p.default) for p in fn.params}
    return FnCall(name, full)


@pytest.mark.parametrize(
    "name, args, reference",
    [
        (
            "cross_entropy",
            {"label_smoothing": 0.1},
            lambda o, t: F.cross_entropy(o, t, label_smoothing=0.1),
        ),
        ("nll", {}, lambda o, t: F.nll_loss(o.log_softmax(1), t)),
    ],
)
def test_class_losses_are_torch_means(name, args, reference):
    g = torch.Generator().manual_seed(0)
    out = torch.randn(12, 5, generator=g)
    tgt = torch.randint(0, 5, (12,), generator=g)
    tgt[3] = -100  # ignore_index
    x = out.log_softmax(1) if name == "nll" else out
    s, c = loss_sums(_call("loss", name, **args), x, tgt)
    torch.testing.assert_close(s / c, reference(out, tgt))


@pytest.mark.parametrize(
    "name, reference",
    [
        ("mse", F.mse_loss),
        ("l1", F.l1_loss),
        ("smooth_l1", F.smooth_l1_loss),
        ("bce_with_logits", lambda o, t: F.binary_cross_entropy_with_logits(o, t.sigmoid())),
    ],
)
def test_regression_losses_are_torch_means(name, reference):
    g = torch.Generator().manual_seed(1)
    out, tgt = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    if name == "bce_with_logits":
        tgt = tgt.sigmoid()
        reference_value = F.binary_cross_entropy_with_logits(out, tgt)
    else:
        reference_value = reference(out, tgt)
    s, c = loss_sums(_call("loss", name), out, tgt)
    torch.testing.assert_close(s / c, reference_value)


def test_sequence_cross_entropy_uses_the_last_axis():
    g = torch.Generator().manual_seed(2)
    out, tgt = torch.randn(2, 7, 4, generator=g), torch.randint(0, 4, (2, 7), generator=g)
    s, c = loss_sums(_call("loss", "cross_entropy"), out, tgt)
    torch.testing.assert_close(s / c, F.cross_entropy(out.transpose(1, 2), tgt))


def test_accuracy_and_top_k():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    tgt = torch.tensor([1, 1, 0, 0])
    s, c = metric_sums(_call("metric", "accuracy"), scores, tgt)
    assert (s / c).item() == 0.5  # rows 0 and 3
    s, c = metric_sums(_call("metric", "top_k", k=2), scores, tgt)
    assert (s / c).item() == 0.75  # all but row 2


def _torch_rates(make, steps_per_epoch: int, epochs: int, per_step: bool) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = make(opt)
    rates = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            if per_step:
                sched.step()
        if not per_step:
            sched.step()
    return rates


S = torch.optim.lr_scheduler


@pytest.mark.parametrize(
    "name, args, make, per_step",
    [
        ("step", {"every": 2, "gamma": 0.5}, lambda o: S.StepLR(o, 2, 0.5), False),
        ("multistep", {"milestones": (2, 3)}, lambda o: S.MultiStepLR(o, [2, 3], 0.1), False),
        ("exponential", {"gamma": 0.8}, lambda o: S.ExponentialLR(o, 0.8), False),
        ("cosine", {"min_lr": 0.01}, lambda o: S.CosineAnnealingLR(o, 15, 0.01), True),
        (
            "onecycle",
            {"max_lr": 1.0},
            lambda o: S.OneCycleLR(o, 1.0, total_steps=15, cycle_momentum=False),
            True,
        ),
    ],
)
def test_schedules_match_torch(name, args, make, per_step):
    sched = Schedule(_call("schedule", name, **args), 0.1, epochs=5, steps_per_epoch=3)
    ours = [sched.lr(s) for s in range(15)]
    np.testing.assert_allclose(ours, _torch_rates(make, 3, 5, per_step), rtol=1e-9, atol=1e-12)


def test_plateau_matches_torch():
    values = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85]
    sched = Schedule(_call("schedule", "plateau", patience=2, factor=0.5), 0.1, 10, 1)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ref = S.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    for v in values:
        assert math.isclose(sched.lr(0), opt.param_groups[0]["lr"])
        sched.end_epoch({"val.loss": v})
        ref.step(v)
    assert math.isclose(sched.lr(0), opt.param_groups[0]["lr"])


def test_warmup_is_linear_per_step():
    sched = Schedule(_call("schedule", "constant", warmup=2), 0.3, epochs=4, steps_per_epoch=5)
    np.testing.assert_allclose(
        [sched.lr(s) for s in range(11)], [0.3 * (s + 1) / 10 for s in range(10)] + [0.3]
    )


def test_summary_recipe_shows_the_resolved_recipe(spec, capsys):
    assert main(["summary", str(spec()), "--recipe", "Fit", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["steps_per_epoch"] == 72 // 16 + 1
    assert doc["network"]["params"] == 6 * 16 + 16 + 16 * 3 + 3
    assert doc["recipe"]["optimizer"] == {
        "name": "sgd",
        "args": {
            "lr": 0.1,
            "momentum": 0.9,
            "dampening": 0.0,
            "nesterov": False,
            "weight_decay": 0.0,
        },
    }


def test_digits_example_reaches_97_percent(tmp_path):
    """The README's example: scikit-learn's digits to ≥ 97% validation accuracy."""
    spec_path = Path(__file__).resolve().parent.parent / "specs" / "digits.dl"
    res = fit(spec_path, out=tmp_path / "run", device="cpu")
    assert max(h["val.accuracy"] for h in res.history) >= 0.97
    assert res.curves is not None and res.curves.read_text().startswith("<?xml")


def test_missing_torch_is_explained(monkeypatch, capsys, spec):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "torch" else real(n, *a)
    )
    assert main(["train", str(spec())]) == 2
    err = capsys.readouterr().err
    assert "needs torch" in err and '[train]"' in err  # the extra that brings all it needs


def test_fit_errors_are_dlc_errors(tmp_path):
    with pytest.raises(DlcError, match="defines no train section"):
        (tmp_path / "n.dl").write_text(NET)
        fit(tmp_path / "n.dl")


class _StopAfter(dict):
    """A stop flag that turns true after ``n`` reads (Ctrl-C during step ``n``)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def __getitem__(self, key):
        self.n -= 1
        return self.n < 0


def test_interrupt_inside_an_accumulation_group_resumes_exactly(spec, tmp_path, monkeypatch):
    """Ctrl-C on the first batch of a two-batch group: the run stops after the group (no
    half-accumulated gradients in the checkpoint), and resuming is exact."""
    from contextlib import contextmanager

    from dlc.training import loop

    body = BASE + "  accumulate = 2\n  clip = 1.0\n  augment = [noise(0.05)]\n"
    path = spec(body)
    whole = fit(path, out=tmp_path / "whole")

    @contextmanager
    def stop_soon():
        # 72 examples, batch 16: 5 batches an epoch. Ctrl-C during epoch 2's first batch,
        # the first of a group of two: the run goes on to the group's end.
        yield _StopAfter(5)

    monkeypatch.setattr(loop, "_catch_interrupt", stop_soon)
    with pytest.raises(loop.Interrupted) as stopped:
        fit(path, out=tmp_path / "cut")
    assert stopped.value.saved.name == "e0001-s000002"  # epoch 2, after its group of 2
    monkeypatch.undo()
    rest = fit(path, resume=tmp_path / "cut")
    assert same(whole.weights, rest.weights)


def test_a_running_run_cannot_be_resumed_twice(spec, tmp_path):
    import fcntl

    path = spec()
    fit(path, out=tmp_path / "run", epochs=1)
    with open(tmp_path / "run" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(DlcError, match="another dlc train is writing"):
            fit(path, resume=tmp_path / "run", epochs=2)


def test_plot_command_draws_the_run(spec, tmp_path, capsys):
    fit(spec(), out=tmp_path / "run", epochs=2)
    assert main(["plot", str(tmp_path / "run"), "-o", str(tmp_path / "c.svg")]) == 0
    svg = (tmp_path / "c.svg").read_text()
    assert svg.startswith("<?xml") and "val" in svg


LANGUAGE_EXAMPLES = """
network DigitNet(width = 16) {
  input x: float32[N, 1, 8, 8]
  conv2d(width, 3, padding = 1) | relu | flatten | dense(10)
}

train DigitsSGD(lr = 0.05, width = 16, epochs = 30) {   # parameters: --set and search may change them
  model = DigitNet(width = width)                       # a network of this file or an import, with arguments
  data = npz("digits_train.npz", x = "images", target = "labels")
  val = 0.1                                             # a fraction held out by the seed, or a source
  loss = cross_entropy(label_smoothing = 0.05)
  metrics = [accuracy, top_k(3)]
  optimizer = sgd(lr, momentum = 0.9, nesterov = true, weight_decay = 5e-4)
  schedule = cosine(warmup = 1)
  batch = 64
  epochs = epochs
  augment = [random_crop(8, padding = 1), noise(0.05)]
  early_stop(monitor = "val.loss", patience = 5, restore_best = true)
  seed = 0
}

search DigitsTune {
  recipe = DigitsSGD
  lr = loguniform(1e-3, 0.3)            # any parameter of the recipe
  width = choice(8, 16, 32)
  objective = maximize("val.accuracy")
  trials = 12
  sampler = tpe                         # tpe | random | grid (grid: choice() spaces only)
  pruner = median                       # none | median | hyperband: stops poor trials by their epoch metrics
  max_params = 1000000                  # optional: trials over budget are rejected before training
}
"""  # noqa: E501 - verbatim from LANGUAGE.md


def test_the_language_pages_examples_compile(tmp_path, capsys):
    """LANGUAGE §11 and §12's examples, verbatim, under a network of the page's style."""
    (tmp_path / "lang.dl").write_text(LANGUAGE_EXAMPLES)
    assert main(["check", str(tmp_path / "lang.dl")]) == 0
    assert "1 recipe: DigitsSGD; 1 search: DigitsTune" in capsys.readouterr().out


def test_resume_reports_changed_recipe_keys(spec, tmp_path):
    from rich.console import Console

    path = spec()
    fit(path, out=tmp_path / "run", epochs=1)
    console = Console(record=True, width=200)
    fit(path, resume=tmp_path / "run", epochs=2, lr=0.05, console=console)
    text = console.export_text()
    assert "changed recipe keys" in text
    assert "epochs: 1 -> 2" in text
    assert "optimizer:" in text and "0.05" in text


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains(spec, tmp_path, precision):
    """autocast (with loss scaling for fp16): the loss falls and the weights stay fp32."""
    res = fit(spec(BASE + f'  precision = "{precision}"'), out=tmp_path / "run", device="cpu")
    assert res.history[-1]["train.loss"] < res.history[0]["train.loss"]
    assert all(v.dtype == np.float32 for v in res.weights.values())


def test_images_and_csv_sources_train_end_to_end(tmp_path):
    """An image folder (one subfolder per class) and a CSV file, through dlc train."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, colour in enumerate(("red", "blue")):
        (tmp_path / "pics" / colour).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 60, (10, 12, 3), dtype=np.uint8)
            pixels[..., 0 if k == 0 else 2] += 180
            Image.fromarray(pixels).save(tmp_path / "pics" / colour / f"{i}.png")
    x = rng.normal(size=(40, 3))
    rows = ["a,b,c,label"] + [f"{u},{v},{w},{int(u > 0)}" for u, v, w in x]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "both.dl").write_text(
        """
network Pic {
  input x: float32[N, 3, 8, 8]
  conv2d(4, 3) | relu | global_avgpool | dense(2)
}
network Row {
  input x: float32[N, 3]
  dense(2)
}
train Pics {
  model = Pic
  data = images("pics", size = (8, 8))
  loss = cross_entropy
  metrics = [accuracy]
  augment = [hflip, random_crop(8, padding = 1), normalize(0.5, 0.25)]
  optimizer = adam(0.05)
  batch = 4
  epochs = 8
}
train Rows {
  model = Row
  data = csv("table.csv", target = "label")
  loss = cross_entropy
  metrics = [accuracy]
  optimizer = adam(0.1)
  batch = 8
  epochs = 10
}
"""
    )
    pics = fit(tmp_path / "both.dl", "Pics", out=tmp_path / "p")
    assert pics.history[-1]["train.accuracy"] == 1.0  # red vs blue
    rows = fit(tmp_path / "both.dl", "Rows", out=tmp_path / "r")
    assert rows.history[-1]["train.accuracy"] >= 0.9


def test_two_outputs_a_weighted_loss_and_a_val_source(tmp_path):
    """`loss = a + 0.3 * b(output = "aux")` on a two-output network, token inputs, and a
    validation source; the logged loss is the weighted sum of the terms' means."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20, (64, 7))
    labels = (tokens[:, 0] >= 10).astype(np.int64)
    np.savez(tmp_path / "train.npz", tokens=tokens[:48], y=labels[:48])
    np.savez(tmp_path / "val.npz", tokens=tokens[48:], y=labels[48:])
    (tmp_path / "seq.dl").write_text(
        """
network Seq {
  input tokens: int64[N, T]
  h = embedding(20, 8) | lstm(16)
  main = h[:, 0] | dense(2)
  aux = h[:, -1] | dense(2)
  output main, aux
}
train Fit {
  model = Seq
  data = npz("train.npz", target = "y")
  val = npz("val.npz", target = "y")
  loss = cross_entropy + 0.3 * cross_entropy(output = "aux")
  metrics = [accuracy, accuracy(output = "aux")]
  optimizer = adam(0.02)
  batch = 16
  epochs = 6
}
"""
    )
    res = fit(tmp_path / "seq.dl", out=tmp_path / "run")
    last = res.history[-1]
    assert {"val.loss", "val.accuracy", "val.aux.accuracy"} <= last.keys()
    assert last["val.accuracy"] > 0.8  # the first token decides the label
    doc = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert [t["weight"] for t in doc["recipe"]["loss"]] == [1.0, 0.3]
    assert doc["data"] == {"train": 48, "val": 16, "test": 0}


def test_eval_agrees_with_torch_on_the_saved_weights(spec, tmp_path, capsys):
    path = spec(BASE + "  test = 0.25")
    fit(path, out=tmp_path / "run", epochs=2)
    w = tmp_path / "run" / "weights.safetensors"
    assert main(["eval", str(path), "--weights", str(w), "--data", str(tmp_path / "data.npz"),
                 "--format", "json"]) == 0  # fmt: skip
    got = json.loads(capsys.readouterr().out)
    from dlc.backends.torch import build
    from dlc.compiler import load

    model = build(load(path, "Mlp"), w).eval()
    data = np.load(tmp_path / "data.npz")
    with torch.no_grad():
        out = model(torch.from_numpy(data["x"]))
    y = torch.from_numpy(data["y"])
    assert got["examples"] == 96
    assert math.isclose(got["loss"], F.cross_entropy(out, y).item(), rel_tol=1e-6)
    assert math.isclose(got["accuracy"], (out.argmax(1) == y).double().mean().item())


def test_float_labels_and_binary_accuracy(tmp_path):
    """Class ids stored as floats train a class loss; one logit with bce_with_logits gets
    a binary accuracy (logit > 0 against target > 0.5), checked against torch."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float64)  # 0.0 / 1.0
    np.savez(tmp_path / "d.npz", x=x, y=y)
    (tmp_path / "b.dl").write_text(
        """
network Two { input x: float32[N, 4]; dense(2) }
network One { input x: float32[N, 4]; dense(1) }
train Ids { model = Two; data = npz("d.npz", target = "y"); loss = cross_entropy
            metrics = [accuracy]; optimizer = adam(0.1); batch = 16; epochs = 5 }
train Bin { model = One; data = npz("d.npz", target = "y"); loss = bce_with_logits
            metrics = [accuracy]; optimizer = adam(0.1); batch = 16; epochs = 5 }
"""
    )
    assert fit(tmp_path / "b.dl", "Ids", out=tmp_path / "i").history[-1]["train.accuracy"] > 0.8
    res = fit(tmp_path / "b.dl", "Bin", out=tmp_path / "b", device="cpu")
    from dlc.backends.torch import build
    from dlc.compiler import load

    model = build(load(tmp_path / "b.dl", "One"), res.weights).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x))[:, 0]
    expected = ((logits > 0) == torch.from_numpy(y > 0.5)).double().mean().item()
    source = FnCall("npz", {"path": str(tmp_path / "d.npz"), "target": "y", "arrays": {}})
    got = evaluate(
        tmp_path / "b.dl", "Bin", weights=tmp_path / "b" / "weights.safetensors", data=source
    )
    assert math.isclose(got["accuracy"], expected) and expected > 0.8


def test_named_classes_number_alike_in_every_split(tmp_path, capsys):
    """CSV labels by name; a validation file without one class keeps the training
    numbering (classes in sorted order, as image folders)."""
    rng = np.random.default_rng(0)
    names = np.array(["cat", "dog", "emu"])

    def table(path: Path, labels: np.ndarray) -> None:
        x = rng.normal(size=(len(labels), 3)) + (labels[:, None] == np.arange(3)) * 3
        rows = ["a,b,c,kind"] + [f"{u},{v},{w},{names[k]}" for (u, v, w), k in zip(x, labels)]
        path.write_text("\n".join(rows) + "\n")

    table(tmp_path / "train.csv", rng.integers(0, 3, 90))
    table(tmp_path / "val.csv", rng.integers(1, 3, 30))  # no "cat": dog must stay 1
    (tmp_path / "c.dl").write_text(
        """
network Row { input x: float32[N, 3]; dense(3) }
train Fit { model = Row; data = csv("train.csv", target = "kind")
            val = csv("val.csv", target = "kind"); loss = cross_entropy
            metrics = [accuracy]; optimizer = adam(0.1); batch = 16; epochs = 8 }
"""
    )
    res = fit(tmp_path / "c.dl", out=tmp_path / "run")
    assert res.history[-1]["val.accuracy"] >= 0.8  # shifted ids would score near 0
    table(tmp_path / "val.csv", np.array([0, 1]))
    (tmp_path / "val.csv").write_text((tmp_path / "val.csv").read_text().replace("cat", "cow"))
    assert main(["train", str(tmp_path / "c.dl"), "-o", str(tmp_path / "r2")]) == 1
    assert "class 'cow' is not among the training data's classes (cat, dog, emu)" in (
        capsys.readouterr().err
    )


def test_fit_takes_a_compiled_network(spec, tmp_path):
    from dlc.compiler import load

    path = spec()
    res = fit(load(path, "Mlp"), "Fit", out=tmp_path / "run", epochs=1)
    assert res.run_dir == tmp_path / "run" and len(res.history) == 1


def test_every_recipe_function_has_a_runtime():
    """The schema (compiler/recipe/schema.py) is the one list of recipe functions: each
    one must run. A function added there without its runtime fails here."""
    from dlc.training import augment
    from dlc.training.data import _READERS
    from dlc.training.loop import OPTIMIZERS

    assert set(FUNCTIONS["optimizer"]) == set(OPTIMIZERS)
    assert set(FUNCTIONS["source"]) == set(_READERS)
    assert set(FUNCTIONS["augment"]) == set(augment.AUGMENTATIONS)
    g = torch.Generator().manual_seed(0)
    out = torch.randn(4, 3, generator=g)
    for name in FUNCTIONS["loss"]:
        target = out.sigmoid() if name in ("mse", "l1", "smooth_l1", "bce_with_logits") else (
            torch.tensor([0, 1, 2, 1])
        )  # fmt: skip
        scores = out.log_softmax(1) if name == "nll" else out
        total, count = loss_sums(_call("loss", name), scores, target)
        assert torch.isfinite(total) and count == (4 if target.dim() == 1 else 12), name
    for name in FUNCTIONS["metric"]:
        args = {"k": 2} if name == "top_k" else {}
        target = torch.tensor([0, 1, 2, 1]) if name in ("accuracy", "top_k") else out.sigmoid()
        total, count = metric_sums(_call("metric", name, **args), out, target)
        assert torch.isfinite(total), name
    required = {"step": {"every": 1}, "multistep": {"milestones": (1,)},
                "exponential": {"gamma": 0.5}, "onecycle": {"max_lr": 0.1}}  # fmt: skip
    for name in FUNCTIONS["schedule"]:
        sched = Schedule(_call("schedule", name, **required.get(name, {})), 0.1, 3, 2)
        assert all(math.isfinite(sched.lr(s)) and sched.lr(s) > 0 for s in range(6)), name
