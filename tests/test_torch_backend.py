"""The PyTorch backend (``build``) and the emitted source (``emit``) against PyTorch.

Every op case of tests/test_ops_torch.py runs through ``build`` and through the emitted
source, against the torch layer (or function) of the case loaded with the same weights.
Every bundled spec runs against its hand-written model in tests/reference_models.py, whose
``state_dict`` takes dlc's weights by order and shape: in eval mode with random batchnorm
statistics, and in training mode under the same seed (dropout masks, batch statistics and
their running averages must agree). The emitted source of every spec is imported in a fresh
interpreter, passes ``ruff check``, and gives ``build``'s outputs.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlc.compiler import DlcError, load, load_source
from dlc.compiler.cli import main
from dlc.compiler.ir.symbolic import Sym
from dlc.runtime.weights import WeightsError, init_weights

torch = pytest.importorskip("torch")

from reference_models import REFERENCES  # noqa: E402  (needs torch)
from test_ops_torch import CASES, Case, random_input, source  # noqa: E402  (needs torch)

from dlc.backends.torch import InputError, build  # noqa: E402
from dlc.backends.torch_source import emit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.filterwarnings("ignore:Using padding='same'"),  # the reference layer's
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated"),  # inductor's
]
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).parent / "golden"
OP_CASES = [pytest.param(op, c, id=f"{op}-{c}") for op, cases in CASES.items() for c in cases]


def weights_for(net, seed: int = 0) -> dict[str, np.ndarray]:
    """``init_weights``, with batchnorm statistics drawn at random (else eval is trivial)."""
    w = init_weights(net, seed)
    rng = np.random.default_rng(seed)
    for name, p in net.graph.params():
        if p.role == "stat_mean":
            w[name] = rng.normal(0, 0.5, p.shape).astype(np.float32)
        elif p.role == "stat_var":
            w[name] = rng.uniform(0.5, 2.0, p.shape).astype(np.float32)
    return w


def tensors(w: dict[str, np.ndarray], prefix: str = "") -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): torch.from_numpy(v.copy()) for k, v in w.items()}


def exec_source(text: str, name: str):
    """The class ``name`` of emitted source, imported in this interpreter."""
    namespace: dict = {}
    exec(compile(text, f"<emitted {name}>", "exec"), namespace)
    return namespace[name]


def close(a, b) -> None:
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


# -- ops -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op, c", OP_CASES)
def test_op_matches_torch(op, c: Case):
    net = load_source(source(c))
    w = weights_for(net, seed=3)
    model = build(net, w).eval()
    torch.manual_seed(0)
    xs = [random_input(dt, s) for dt, s in c.inputs]
    ref = c.module() if c.module is not None else None
    if ref is not None:
        ref.load_state_dict(tensors(w, "y."), strict=True)
        ref.eval()
    forward = c.forward or (lambda m, *xs: m(*xs))
    with torch.no_grad():
        expected = forward(ref, *xs)
        close(model(*xs), expected)
        emitted = exec_source(emit(net), net.name)().eval()
        emitted.load_state_dict(model.state_dict(), strict=True)
        close(emitted(*xs), expected)


# -- specs ---------------------------------------------------------------------------------
def spec_inputs(net, name: str, seed: int = 0) -> list[torch.Tensor]:
    """The reference's example inputs; one example of the declared size where the spec
    fixes other dims (ResNets: 224 x 224)."""
    torch.manual_seed(seed)
    xs = list(REFERENCES[name][1]())
    for i, (t, x) in enumerate(zip(net.inputs.values(), xs)):
        shape = [x.shape[k] if isinstance(d, Sym) else d for k, d in enumerate(t.shape)]
        if list(x.shape) != shape:
            xs[i] = torch.randn([1, *shape[1:]])
    return xs


@functools.cache
def built(name: str):
    """(net, model in eval mode with ``weights_for``, inputs, outputs as a tuple)."""
    net = load(SPECS / name)
    model = build(net, weights_for(net)).eval()
    xs = spec_inputs(net, name)
    with torch.no_grad():
        out = model(*xs)
    return net, model, xs, out if isinstance(out, tuple) else (out,)


def reference(name: str, state: dict[str, torch.Tensor]):
    """The hand-written model with dlc's weights, matched by order and shape."""
    ref = REFERENCES[name][0]()
    theirs = ref.state_dict()
    assert len(theirs) == len(state)
    mapped = {}
    for (k, v), (ours, w) in zip(theirs.items(), state.items()):
        assert v.shape == w.shape, f"{k} {list(v.shape)} vs {ours} {list(w.shape)}"
        mapped[k] = w.clone()
    ref.load_state_dict(mapped, strict=True)
    return ref


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_spec_matches_reference_model(name):
    net, model, xs, out = built(name)
    assert sum(p.numel() for p in model.parameters()) == net.params
    assert sum(b.numel() for b in model.buffers()) == net.buffers
    # The names are the contract; the order is the IR's except that a module lists its own
    # parameters (a spec's `param`s) before its children's (LANGUAGE §10).
    state = model.state_dict()
    in_ir_order = {k: state[k] for k, _ in net.graph.params()}
    assert sorted(state) == sorted(in_ir_order)
    assert sorted(k for k, _ in model.named_parameters()) == sorted(
        k for k, _ in net.graph.params(buffers=False)
    )
    if not any(n.op == "param" for n in net.graph.nodes):
        assert list(state) == list(in_ir_order)
    ref = reference(name, in_ir_order).eval()
    with torch.no_grad():
        close(out, ref(*xs))


@pytest.mark.parametrize(
    "name", ["sentiment_lstm.dl", "tiny_transformer.dl", "tcn.dl", "unet.dl", "gru_seq2seq.dl"]
)
def test_training_mode_matches_reference_model(name):
    """Same seed, same dropout masks; the same batch statistics and running averages."""
    net = load(SPECS / name)
    model = build(net, weights_for(net)).train()
    ref = reference(name, model.state_dict()).train()
    xs = spec_inputs(net, name)
    torch.manual_seed(7)
    out = model(*xs)
    torch.manual_seed(7)
    close(out, ref(*xs))
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
    out.sum().backward()  # and it trains: every parameter gets a gradient
    assert all(p.grad is not None for p in model.parameters())


def test_train_and_eval_switch_dropout_and_batchnorm():
    net = load_source(
        "network T() {\n  input x: float32[N, 4, 6]\n  batchnorm\n  dropout(0.5)\n"
        "  lstm(5, layers=2, dropout=0.5)\n}\n"
    )
    model = build(net)
    x = torch.randn(8, 4, 6)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        assert int(model.batchnorm_0.num_batches_tracked) == 0
    model.train()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert not torch.equal(a, b)  # fresh dropout masks, in and between the lstm layers
    assert int(model.batchnorm_0.num_batches_tracked) == 2
    assert not torch.equal(model.batchnorm_0.running_mean, torch.zeros(4))


@pytest.mark.parametrize("p", [0.25, 1.0])
def test_drop_path_in_training(p):
    """Training: each example zeroed or scaled by 1 / (1 - p) as a whole, by the mask
    torchvision's stochastic_depth(mode="row") draws under the same seed; eval: identity."""
    net = load_source(f"network T() {{\n  input x: float32[N, 3, 4]\n  drop_path({p})\n}}\n")
    x = torch.randn(64, 3, 4)
    torch.manual_seed(7)
    keep = torch.empty(64, 1, 1).bernoulli_(1 - p)
    expected = x * keep / (1 - p) if p < 1 else torch.zeros_like(x)
    assert p == 1 or 0 < keep.sum() < 64  # the seed draws both
    for model in (build(net), exec_source(emit(net), net.name)()):
        torch.manual_seed(7)
        close(model.train()(x), expected)
        assert torch.equal(model.eval()(x), x)


def test_outputs_in_order_dead_values_and_named_inputs():
    net = load_source(
        "network T() {\n  input a: float32[N, 3]\n  input b: float32[N, 3]\n"
        "  s = add(a, b) | dense(4)\n  unused = b | tanh\n  p = mul(a, b)\n  output p, s\n}\n"
    )
    model = build(net, init_weights(net)).eval()
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    p, s = model(a, b)
    torch.testing.assert_close(p, a * b)
    torch.testing.assert_close(s, model.s(a + b))
    close(model(b=b, a=a), (p, s))
    emitted = exec_source(emit(net), "T")()
    emitted.load_state_dict(model.state_dict())
    close(emitted(a, b), (p, s))


def test_deepcopy_and_pickle_give_independent_equal_modules(tmp_path):
    """What training loops do (an EMA copy, ``torch.save(model)``) works on built modules."""
    net = load(SPECS / "tiny_transformer.dl")
    model = build(net, init_weights(net)).eval()
    copied = copy.deepcopy(model)
    torch.save(model, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=False)
    x = torch.randint(0, 1000, (2, 7))
    with torch.no_grad():
        close(copied(x), model(x))
        close(loaded(x), model(x))
        copied.dense_0.bias.add_(1.0)
        assert not torch.equal(copied(x), model(x))


# -- inputs, weights, initialisation ---------------------------------------------------------
def test_inputs_are_checked_on_arrival():
    """As every backend checks them (runtime/inputs.py), with the same messages."""
    model = build(load(SPECS / "unet.dl"))
    with pytest.raises(InputError, match=r"input x: expected rank 4 \(float32\[N, 3, H, W\]\)"):
        model(torch.randn(1, 3, 32))
    with pytest.raises(InputError, match=r"N=1, H=40, W=32 break a constraint of UNet: concat"):
        model(torch.randn(1, 3, 40, 32))  # 40 // 8 != 2 * (40 // 16): the skips do not fit
    with pytest.raises(InputError, match=r"H=8, W=16 are too small: maxpool2d"):
        model(torch.randn(1, 3, 8, 16))
    cast = r"expected float32 .*got float64 .*pass x\.to\(torch\.float32\)"
    with pytest.raises(InputError, match=cast):
        model(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    seq2seq = build(load(SPECS / "gru_seq2seq.dl"))
    with pytest.raises(InputError, match=r"error: missing input tgt$"):
        seq2seq(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(InputError, match=r"takes 2 inputs \(src, tgt\), got 3 positional"):
        seq2seq(*[torch.zeros(2, 5, dtype=torch.long)] * 3)
    binds = r"input tgt: axis 0 is N, which input src \(axis 0\) binds to 2; got 3"
    with pytest.raises(InputError, match=binds):
        seq2seq(torch.zeros(2, 5, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long))
    ids = torch.zeros(2, 5, dtype=torch.int32)  # indices: int32 is accepted for int64
    assert seq2seq(ids, tgt=ids[:, :3]).shape[:2] == (2, 3)
    lenet = build(load(SPECS / "lenet5.dl"))
    with pytest.raises(InputError, match=r"input x: axis 2 must be 32 \(.*\), got 28"):
        lenet(torch.randn(2, 1, 28, 28))


def test_weights_are_validated_as_every_backend_does(tmp_path):
    net = load(SPECS / "lenet5.dl")
    w = init_weights(net, 1)
    bad = dict(w, extra=np.zeros(1, np.float32))
    del bad["dense_0.bias"]
    bad["conv2d_0.weight"] = np.zeros((6, 1, 3, 3), np.float32)
    with pytest.raises(WeightsError) as err:
        build(net, bad)
    text = str(err.value)
    assert "missing: dense_0.bias [120]" in text and "unexpected: extra" in text
    assert "wrong shape: conv2d_0.weight expected [6, 1, 5, 5], found [6, 1, 3, 3]" in text
    pytest.importorskip("safetensors")
    from dlc.runtime.weights import save_weights

    path = save_weights(w, tmp_path / "lenet5.safetensors")
    from_file = build(net, path).state_dict()
    for k, v in build(net, w).state_dict().items():
        assert torch.equal(from_file[k], v)


def test_spec_inits_use_torch_nn_init_and_the_rest_torch_defaults():
    net = load_source(
        "network T() {\n  input x: float32[N, 64]\n"
        '  init weight = kaiming_normal(mode="fan_out", nonlinearity="relu"), bias = zeros\n'
        "  dense(512)\n  dense(256, init=orthogonal, bias_init=constant(0.5))\n"
        "  layernorm\n  dense(3, init=uniform(-0.1, 0.1))\n}\n"
    )
    torch.manual_seed(0)
    m = build(net)
    std = m.dense_0.weight.std().item()
    assert abs(std - (2 / 512) ** 0.5) < 0.05 * std  # gain sqrt(2) over fan_out 512
    assert torch.equal(m.dense_0.bias, torch.zeros(512))
    w = m.dense_1.weight
    torch.testing.assert_close(w @ w.T, torch.eye(256), atol=1e-4, rtol=0)
    assert torch.equal(m.dense_1.bias, torch.full((256,), 0.5))
    assert torch.equal(m.layernorm_0.weight, torch.ones(256))  # PyTorch's default
    assert m.dense_2.weight.abs().max() <= 0.1
    assert torch.equal(m.dense_2.bias, torch.zeros(3))  # the network's `bias = zeros`


def test_every_initialiser_is_a_torch_nn_init_function():
    from dlc.backends.torch import _INIT_KEYWORDS
    from dlc.compiler.ir.initializers import INITIALIZERS

    for name, signature in INITIALIZERS.items():
        accepted = inspect.signature(getattr(torch.nn.init, f"{name}_")).parameters
        for arg in signature:
            assert _INIT_KEYWORDS.get(arg.name, arg.name) in accepted, (name, arg.name)


def test_layer_names_that_torch_or_python_cannot_take():
    clash = load_source("network T() {\n  input x: float32[N, 3]\n  forward = dense(2)\n}\n")
    with pytest.raises(DlcError, match="'forward' is an attribute of torch.nn.Module"):
        build(clash)
    reserved = load_source("network T() {\n  input x: float32[N, 3]\n  lambda = dense(2)\n}\n")
    with pytest.raises(DlcError, match="'lambda' cannot be a Python attribute"):
        emit(reserved)


# -- torch.compile, torch.export -------------------------------------------------------------
@pytest.mark.slow  # inductor compiles C++ on a cold cache (~20 s), ~2 s when warm
def test_torch_compile_matches_eager():
    net = load(SPECS / "lenet5.dl")
    model = build(net, init_weights(net)).eval()
    compiled = torch.compile(model, fullgraph=True)  # the walk traces without a graph break
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


def test_torch_export_with_a_dynamic_batch():
    net = load(SPECS / "tcn.dl")
    model = build(net, init_weights(net)).eval()
    x = torch.randn(2, 1, 50)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (x,), dynamic_shapes=(({0: batch},),))  # forward(*xs)
    y = torch.randn(5, 1, 50)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(y), model(y))


# -- emitted source ----------------------------------------------------------------------------
def test_emitted_source_runs_alone_and_matches_build(tmp_path):
    """Each spec's module is imported by a fresh interpreter that has only torch. (The
    largest are left out: their weights would cost seconds to hand over, and ``build``
    runs the very same source in process, checked against the references above.)"""
    cases = {}
    for name in sorted(REFERENCES):
        if load(SPECS / name).params > 20_000_000:
            continue
        net, model, xs, out = built(name)
        (tmp_path / f"m_{net.name}.py").write_text(emit(net))
        cases[net.name] = (model.state_dict(), xs, out)
    torch.save(cases, tmp_path / "cases.pt")
    script = f"""
import importlib, sys, torch
sys.path.insert(0, {str(tmp_path)!r})
for name, (state, xs, expected) in torch.load({str(tmp_path / "cases.pt")!r}).items():
    model = getattr(importlib.import_module("m_" + name), name)().eval()
    model.load_state_dict(state, strict=True)
    assert list(model.state_dict()) == list(state), name
    with torch.no_grad():
        out = model(*xs)
    for a, b in zip(out if isinstance(out, tuple) else (out,), expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
assert not [m for m in sys.modules if m == "dlc" or m.startswith("dlc.")]
print("ok", len(sys.argv))
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok")


def ruff() -> list[str]:
    exe = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")
    if exe:
        return [exe]
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed")
    return [sys.executable, "-m", "ruff"]


@pytest.mark.parametrize(
    "rules",
    [[], ["--select", "E,W,F,I,B,UP", "--line-length", "100"]],
    ids=["default-rules", "project-rules"],
)
def test_emitted_source_passes_ruff(tmp_path, rules):
    for spec in sorted(SPECS.glob("*.dl")):
        (tmp_path / f"{spec.stem}.py").write_text(emit(load(spec)))
    run = subprocess.run(
        [*ruff(), "check", "--isolated", "--no-cache", *rules, str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    if rules:  # and laid out as the project's own code is
        run = subprocess.run(
            [*ruff(), "format", "--isolated", "--no-cache", "--line-length", "100", "--diff"]
            + [str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout + run.stderr


def test_emitted_lenet5_is_the_reviewed_golden(monkeypatch):
    """tests/golden/lenet5_torch.py was read against the spec and the hand-written LeNet5."""
    monkeypatch.chdir(ROOT)  # the docstring names the spec as it was given
    assert emit(load("specs/lenet5.dl")) == (GOLDEN / "lenet5_torch.py").read_text()


def test_cli_compile_to_torch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "lenet5.py"
    assert main(["compile", "specs/lenet5.dl", "--target", "torch", "-o", str(out)]) == 0
    assert out.read_text() == (GOLDEN / "lenet5_torch.py").read_text()
    assert "LeNet5 as PyTorch source (61,706 parameters)" in capsys.readouterr().out
    missing = tmp_path / "no" / "such" / "dir" / "m.py"
    assert main(["compile", "specs/lenet5.dl", "--target", "torch", "-o", str(missing)]) == 2
    assert f"cannot write {missing}: no such directory" in capsys.readouterr().err
    assert main(["compile", "specs/lenet5.dl", "--target", "torch", "-o", str(tmp_path)]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.py"]  # no temporary left
