"""Initialisation and weights files.

The reference for every initialiser is PyTorch's: the same ``torch.nn.init`` function (or
the layer's own ``reset_parameters``) on a tensor of the same shape. Streams differ, so the
comparison is of distributions: mean, standard deviation and range of large tensors.
"""

import subprocess
import sys

import numpy as np
import pytest

from dlc.compiler import DlcError, load_source
from dlc.compiler.ir.graph import Init
from dlc.runtime.weights import (
    WeightsError,
    check_weights,
    init_weights,
    read_weights,
    sample,
    save_weights,
)

torch = pytest.importorskip("torch")
nn = torch.nn


def close_distributions(ours: np.ndarray, ref: np.ndarray) -> None:
    """Two samples of one distribution: mean and standard deviation agree within six
    standard errors of their difference (sizes make small tensors' tolerance wider)."""
    n, sigma = ref.size, float(ref.std())
    assert ours.shape == ref.shape
    assert abs(ours.mean() - ref.mean()) < 6 * sigma * (2 / n) ** 0.5 + 1e-9
    assert abs(ours.std() / sigma - 1) < 6 * (1 / n) ** 0.5


INITS = [
    (Init("normal", (("mean", 0.5), ("std", 2.0))), lambda t: nn.init.normal_(t, 0.5, 2.0)),
    (Init("uniform", (("a", -3.0), ("b", 1.0))), lambda t: nn.init.uniform_(t, -3.0, 1.0)),
    (
        Init("trunc_normal", (("mean", 0.5), ("std", 1.0), ("a", -0.5), ("b", 1.0))),
        lambda t: nn.init.trunc_normal_(t, 0.5, 1.0, -0.5, 1.0),
    ),
    (Init("trunc_normal", (("std", 0.02),)), lambda t: nn.init.trunc_normal_(t, std=0.02)),
    (Init("xavier_uniform", (("gain", 2.0),)), lambda t: nn.init.xavier_uniform_(t, 2.0)),
    (Init("xavier_normal"), nn.init.xavier_normal_),
    (Init("kaiming_uniform", (("a", 5**0.5),)), lambda t: nn.init.kaiming_uniform_(t, 5**0.5)),
    (
        Init("kaiming_normal", (("mode", "fan_out"), ("nonlinearity", "relu"))),
        lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
    ),
    (
        Init("kaiming_uniform", (("nonlinearity", "tanh"),)),
        lambda t: nn.init.kaiming_uniform_(t, nonlinearity="tanh"),
    ),
    (Init("orthogonal", (("gain", 1.5),)), lambda t: nn.init.orthogonal_(t, 1.5)),
]


@pytest.mark.parametrize(("init", "torch_init"), INITS, ids=[str(i) for i, _ in INITS])
@pytest.mark.parametrize("shape", [(256, 128, 3), (300, 200)])
def test_initialisers_match_torch_distributions(init, torch_init, shape):
    ours = sample(init, shape, np.random.default_rng(0))
    ref = torch_init(torch.empty(shape)).numpy()
    close_distributions(ours, ref)


def test_orthogonal_is_orthogonal():
    q = sample(Init("orthogonal"), (64, 32), np.random.default_rng(1))
    np.testing.assert_allclose(q.T @ q, np.eye(32), atol=1e-10)


def test_constant_zeros_ones():
    rng = np.random.default_rng(0)
    assert (sample(Init("constant", (("value", 0.25),)), (3,), rng) == 0.25).all()
    assert (sample(Init("zeros"), (3,), rng) == 0).all()
    assert (sample(Init("ones"), (3,), rng) == 1).all()


def test_spec_init_statements_are_applied():
    net = load_source("""
network Net() {
  init weight = normal(0, 0.02), bias = constant(0.5)
  input x: float32[N, 512]
  dense(512)
  layernorm
  dense(256, init=kaiming_normal(mode="fan_out"))
}""")
    w = init_weights(net, seed=0)
    assert abs(w["dense_0.weight"].std() - 0.02) < 0.001
    assert (w["dense_0.bias"] == 0.5).all() and (w["dense_1.bias"] == 0.5).all()
    assert (w["layernorm_0.weight"] == 1).all()
    assert abs(w["dense_1.weight"].std() - (2 / 256) ** 0.5) < 0.002


def test_same_seed_same_bytes_and_seeds_differ():
    src = "network Net() {\n  input x: float32[N, 3, 8, 8]\n  conv2d(4, 3); batchnorm\n}"
    a, b = init_weights(load_source(src), 7), init_weights(load_source(src), 7)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    c = init_weights(load_source(src), 8)
    assert not np.array_equal(a["conv2d_0.weight"], c["conv2d_0.weight"])
    assert a["batchnorm_0.num_batches_tracked"].dtype == np.int64


def test_adding_a_layer_leaves_the_others_unchanged():
    one = init_weights(load_source("network N() { input x: float32[N, 4]; dense(4) }"), 0)
    two = init_weights(load_source("network N() { input x: float32[N, 4]; dense(4); dense(4) }"), 0)
    assert np.array_equal(one["dense_0.weight"], two["dense_0.weight"])


def test_fan_based_init_on_a_vector_is_a_located_error():
    net = load_source("network N() {\n  input x: float32[N, 4]\n  layernorm\n}")
    node = net.graph.nodes[-1]
    bad = type(node.params["weight"])((4,), "scale", init=Init("xavier_uniform"))
    graph = type(net.graph)(
        net.graph.name,
        net.graph.args,
        (
            *net.graph.nodes[:-1],
            type(node)(
                node.name,
                node.op,
                node.inputs,
                node.attrs,
                node.type,
                {**node.params, "weight": bad},
                node.span,
            ),
        ),
        net.graph.inputs,
        net.graph.outputs,
    )
    with pytest.raises(DlcError, match="rank >= 2"):
        init_weights(graph)


def test_weights_file_round_trip_and_validation(tmp_path):
    net = load_source("network N() {\n  input x: float32[N, 3, 8, 8]\n  conv2d(4, 3); batchnorm\n}")
    w = init_weights(net, 0)
    path = save_weights(w, tmp_path / "w.safetensors")
    back = check_weights(net, path)
    assert all(np.array_equal(back[k], w[k]) and back[k].dtype == w[k].dtype for k in w)
    bad = dict(w)
    bad["conv2d_0.weight"] = bad["conv2d_0.weight"][:, :2]
    bad["batchnorm_0.running_var"] = bad["batchnorm_0.running_var"].astype(np.float64)
    del bad["conv2d_0.bias"]
    bad["extra"] = np.zeros(1, np.float32)
    with pytest.raises(WeightsError) as err:
        check_weights(net, bad)
    text = str(err.value)
    assert "4 problems" in text
    assert "wrong shape: conv2d_0.weight expected [4, 3, 3, 3], found [4, 2, 3, 3]" in text
    assert "missing: conv2d_0.bias [4]" in text and "unexpected: extra" in text
    assert "wrong dtype: batchnorm_0.running_var expected float32, found float64" in text


def test_save_is_atomic_and_errors_are_clear(tmp_path):
    net = load_source("network N() { input x: float32[N, 4]; dense(2) }")
    w = init_weights(net)
    with pytest.raises(DlcError, match="no such directory"):
        save_weights(w, tmp_path / "missing" / "w.safetensors")
    target = tmp_path / "w.safetensors"
    target.write_bytes(b"old")
    save_weights(w, target)
    assert sorted(read_weights(target)) == ["dense_0.bias", "dense_0.weight"]
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary left
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DlcError, match="cannot read weights file"):
        read_weights(tmp_path / "junk.safetensors")


def test_dlc_init_command(tmp_path):
    out = tmp_path / "w.safetensors"
    spec = tmp_path / "n.dl"
    spec.write_text("network N(h = 8) {\n  input x: float32[N, 4]\n  dense(h)\n}\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlc.compiler.cli",
            "init",
            str(spec),
            "--seed",
            "3",
            "--set",
            "h=5",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    w = read_weights(out)
    assert w["dense_0.weight"].shape == (5, 4)
    again = init_weights(load_source(spec.read_text(), h=5), seed=3)
    assert w["dense_0.weight"].tobytes() == again["dense_0.weight"].tobytes()
