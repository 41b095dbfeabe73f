"""Search sections (LANGUAGE §12) on Optuna: grids visit each point once (also with two
workers on one SQLite storage), random and TPE run the trials asked for, budgets prune
before any model is built, a re-run resumes, the best trial's --set line reproduces its
objective, and mistakes are located errors. Tiny recipes keep it fast."""

from __future__ import annotations

import itertools
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from dlc.compiler.cli import main, parse_overrides
from dlc.training import api, fit, search
from dlc.training.tune import trial_seed

NET = """
network Mlp(hidden = 8) {
  input x: float32[N, 6]
  dense(hidden) | tanh | dense(3)
}
train Fit(lr = 0.1, hidden = 8, epochs = 2) {
  model = Mlp(hidden = hidden)
  data = npz("data.npz", target = "y")
  val = 0.25
  loss = cross_entropy
  metrics = [accuracy]
  optimizer = sgd(lr, momentum = 0.9)
  batch = 16
  epochs = epochs
}
"""


def spec(folder: Path, body: str) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    np.savez(folder / "data.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    path = folder / "tune.dl"
    path.write_text(NET + "search Tune {\n  recipe = Fit\n" + body + "\n}\n")
    return path


def complete(study) -> list:
    return [t for t in study.trials if t.state.name == "COMPLETE"]


GRID = """
  lr = choice(0.05, 0.2)
  hidden = choice(4, 8, 16)
  objective = maximize("val.accuracy")
  sampler = grid
"""


def test_grid_visits_each_point_once(tmp_path):
    study = search(spec(tmp_path, GRID), out=tmp_path / "s")
    points = sorted((t.params["lr"], t.params["hidden"]) for t in complete(study))
    assert points == sorted(itertools.product((0.05, 0.2), (4, 8, 16)))
    assert len(study.trials) == 6


def test_grid_with_two_workers_on_one_storage(tmp_path, capsys):
    path = spec(tmp_path, GRID)
    assert (
        main(["search", str(path), "--jobs", "2", "-o", str(tmp_path / "s"), "--format", "json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    done = [
        (t["params"]["lr"], t["params"]["hidden"])
        for t in doc["trials"]
        if t["state"] == "complete"
    ]
    assert sorted(done) == sorted(itertools.product((0.05, 0.2), (4, 8, 16)))  # once each


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_random_and_tpe_run_the_trials_asked(tmp_path, sampler):
    body = f"""
  lr = loguniform(0.01, 0.3)
  hidden = int_uniform(4, 12, step = 4)
  objective = minimize("val.loss")
  sampler = {sampler}
  trials = 4
"""
    study = search(spec(tmp_path, body), out=tmp_path / "s")
    assert len(complete(study)) == 4
    for t in complete(study):
        assert 0.01 <= t.params["lr"] <= 0.3 and t.params["hidden"] in (4, 8, 12)


def test_budget_prunes_before_any_model_is_built(tmp_path, monkeypatch):
    built = []
    real = api.fit
    monkeypatch.setattr(api, "fit", lambda *a, **k: built.append(k["hidden"]) or real(*a, **k))
    body = """
  hidden = choice(4, 64)
  objective = maximize("val.accuracy")
  sampler = grid
  max_params = 200
"""
    study = search(spec(tmp_path, body), out=tmp_path / "s")
    by_hidden = {t.params["hidden"]: t for t in study.trials}
    # hidden = 64: 6*64 + 64 + 64*3 + 3 = 643 parameters > 200; hidden = 4: 43
    assert by_hidden[64].state.name == "PRUNED"
    assert "643 parameters" in by_hidden[64].user_attrs["pruned_by"]
    assert by_hidden[4].state.name == "COMPLETE"
    assert built == [4]  # the oversized trial never reached training
    assert not (tmp_path / "s" / "trials" / f"{by_hidden[64].number:04d}").exists()


def test_rerun_resumes_and_keeps_finished_trials(tmp_path, monkeypatch):
    body = """
  lr = uniform(0.01, 0.3)
  objective = maximize("val.accuracy")
  sampler = random
  trials = 3
"""
    path = spec(tmp_path, body)
    calls = {"n": 0}
    real = api.fit

    def interrupted_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(api, "fit", interrupted_second)
    with pytest.raises(KeyboardInterrupt):
        search(path, out=tmp_path / "s")
    monkeypatch.undo()
    first = search(path, out=tmp_path / "s", trials=0)  # nothing new: read the study
    kept = {t.number: t.value for t in complete(first)}
    assert len(kept) == 1
    study = search(path, out=tmp_path / "s")
    assert len(complete(study)) == 3
    assert all(study.trials[n].value == v for n, v in kept.items())  # untouched


def test_best_set_line_reproduces_its_objective(tmp_path):
    body = """
  lr = choice(0.05, 0.3)
  objective = maximize("val.accuracy")
  sampler = grid
"""
    path = spec(tmp_path, body)
    search(path, out=tmp_path / "s")
    best = json.loads((tmp_path / "s" / "best.json").read_text())
    assert best["set"].endswith(f"--set seed={trial_seed(0, best['trial'])}")
    flags = shlex.split(best["set"])
    overrides = parse_overrides(flags[1::2])
    again = fit(path, "Fit", out=tmp_path / "again", **overrides)
    assert max(h["val.accuracy"] for h in again.history) == best["objective"]["value"]


def test_trial_seeds_depend_on_the_search_seed_and_number_only():
    assert trial_seed(0, 3) == trial_seed(0, 3)
    assert len({trial_seed(0, n) for n in range(50)}) == 50
    assert trial_seed(1, 3) != trial_seed(0, 3)


@pytest.mark.parametrize(
    "line, message",
    [
        ("  hiden = uniform(0.1, 0.2)", "has no parameter 'hiden'; did you mean 'hidden'?"),
        ("  lr = uniform(0.1, 0.2)\n  sampler = grid", "a grid search takes choice(...) spaces"),
        ('  objective = maximize("val.acc")', "did you mean 'val.accuracy'"),
        ("  sampler = bayes", "sampler is one of tpe, random, grid"),
        ("  lr = loguniform(0, 1)", "0 < low < high"),
        ("  hidden = int_uniform(8, 4)", "an empty range"),
    ],
)
def test_search_mistakes_are_located(tmp_path, capsys, line, message):
    body = "  lr = choice(0.1, 0.2)\n" if "lr =" not in line else ""
    if "objective" not in line:
        body += '  objective = maximize("val.accuracy")\n'
    path = spec(tmp_path, body + line)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "tune.dl:" in err


def test_grid_never_runs_more_than_its_points(tmp_path):
    study = search(spec(tmp_path, GRID + "  trials = 50"), out=tmp_path / "s")
    assert len(complete(study)) == 6 and len(study.trials) == 6


def test_a_rerun_draws_new_points(tmp_path):
    body = """
  lr = uniform(0.01, 0.3)
  objective = maximize("val.accuracy")
  sampler = random
  trials = 2
"""
    path = spec(tmp_path, body)
    first = [t.params["lr"] for t in search(path, out=tmp_path / "s").trials]
    again = [t.params["lr"] for t in search(path, out=tmp_path / "s", trials=4).trials]
    assert again[:2] == first and not set(again[2:]) & set(first)


def test_a_search_whose_trials_all_fail_stops(tmp_path):
    path = spec(tmp_path, GRID)
    (tmp_path / "data.npz").unlink()  # every trial fails to read its data
    with pytest.raises(Exception, match="3 trials in a row failed"):
        search(path, out=tmp_path / "s")


@pytest.mark.parametrize(
    "line, message",
    [
        ("  recipe = Fit(epochs = 0)", "epochs: expected an integer ≥ 1"),
        ('  precision = "fp8"', 'one of "fp32", "bf16", "fp16"'),
        ("  batch = choice(16, 0)", "batch: expected an integer ≥ 1, got 0"),
        ("  seed = choice(1, 2)", "is the search's own seed"),
    ],
)
def test_check_applies_the_searchs_values_to_the_recipe(tmp_path, capsys, line, message):
    body = '  lr = choice(0.1, 0.2)\n  objective = maximize("val.accuracy")\n' + line
    path = spec(tmp_path, body)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "tune.dl:" in err
