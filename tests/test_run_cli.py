"""`dlc run`: every backend gives the same outputs as a hand-written torch model."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlc.compiler import load
from dlc.runtime.weights import init_weights, save_weights

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).parent))
from reference_models import REFERENCES  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "specs" / "lenet5.dl"


def dlc(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlc.compiler.cli", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    net = load(SPEC)
    weights = init_weights(net, seed=5)
    save_weights(weights, folder / "w.safetensors")
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    np.save(folder / "x.npy", x)
    reference = REFERENCES["lenet5.dl"][0]().eval()
    for p, (name, value) in zip(reference.parameters(), weights.items()):
        assert tuple(p.shape) == value.shape, name  # same declaration order
        p.data = torch.from_numpy(value)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    return folder, expected


@pytest.mark.parametrize("backend", ["numpy", "torch", "onnxruntime"])
def test_run_each_backend_writes_the_reference_outputs(case, backend):
    folder, expected = case
    out = folder / f"{backend}.npz"
    run = dlc(
        "run",
        SPEC,
        "--weights",
        folder / "w.safetensors",
        "--input",
        f"x={folder / 'x.npy'}",
        "--backend",
        backend,
        "-o",
        out,
    )
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(np.load(out)["dense_2"], expected, rtol=1e-4, atol=1e-5)


def test_run_prints_a_digest_and_seed_weights_work(case):
    folder, _ = case
    run = dlc("run", SPEC, "--seed", "5", "-i", folder / "x.npy")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("dense_2: float32[3, 10] mean=")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "missing --input for x"),
        (("-i", "y=nothing.npy"), "the network's inputs are x"),
        (("-i", "x=nothing.npy"), "cannot read nothing.npy"),
    ],
)
def test_run_usage_errors(args, words):
    run = dlc("run", SPEC, *args)
    assert run.returncode == 2 and words in run.stderr and "Traceback" not in run.stderr


def test_run_rejects_a_wrong_input_shape(case, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 2, 32, 32), np.float32))
    run = dlc("run", SPEC, "-i", tmp_path / "bad.npy")
    assert run.returncode != 0 and "x" in run.stderr and "Traceback" not in run.stderr
