"""Parameter counts of the bundled specs against hand-written PyTorch models."""

from pathlib import Path

import pytest

from dlc.compiler import load

torch = pytest.importorskip("torch")

from reference_models import REFERENCES  # noqa: E402  (needs torch)

SPECS = Path(__file__).parent.parent / "specs"

# Published parameter counts and multiply-accumulates per 224x224 image (torchvision).
PUBLISHED = {
    "resnet18.dl": (11_689_512, 1_814_073_344),
    "resnet34.dl": (21_797_672, 3_663_761_408),
    "resnet50.dl": (25_557_032, 4_089_184_256),
}


def reference_params(name: str) -> int:
    """Parameter count of the hand-written reference model for spec `name`."""
    factory, _ = REFERENCES[name]
    return sum(p.numel() for p in factory().parameters())


def test_every_spec_has_a_reference():
    assert sorted(p.name for p in SPECS.glob("*.dl")) == sorted(REFERENCES)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_params_match_reference(name):
    assert load(str(SPECS / name)).params == reference_params(name)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_runs(name):
    factory, example_inputs = REFERENCES[name]
    inputs = example_inputs()
    with torch.no_grad():
        out = factory().eval()(*inputs)
    assert out.shape[0] == inputs[0].shape[0]
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_counts(name):
    params, macs = PUBLISHED[name]
    assert reference_params(name) == params
    net = load(str(SPECS / name))
    assert net.params == params
    assert net.macs == macs


# FlopCounterMode counts no aten LSTM/GRU and no fused attention (scaled_dot_product
# attention), which dlc counts (docs/language.md §8): specs with those ops are checked op by
# op in tests/test_ops_torch.py instead.
UNCOUNTED_BY_TORCH = {"rnn", "lstm", "gru", "attention"}
COUNTED_BY_TORCH = [
    name
    for name in sorted(REFERENCES)
    if not {n.op for n in load(str(SPECS / name)).graph.nodes} & UNCOUNTED_BY_TORCH
]


@pytest.mark.parametrize("name", COUNTED_BY_TORCH)
def test_macs_are_torch_flop_counter_halved(name):
    from test_torch_backend import spec_inputs
    from torch.utils.flop_counter import FlopCounterMode

    from dlc.compiler.ir.symbolic import Sym, evaluate

    net = load(str(SPECS / name))
    xs = spec_inputs(net, name)
    with FlopCounterMode(display=False) as counter:  # grad on: no fused inference paths
        REFERENCES[name][0]().eval()(*xs)
    bound = {
        str(d): size
        for t, x in zip(net.inputs.values(), xs)
        for d, size in zip(t.shape, x.shape)
        if isinstance(d, Sym)
    }
    macs = net.macs if isinstance(net.macs, int) else evaluate(net.macs, bound)
    assert macs == counter.get_total_flops() // 2 // xs[0].shape[0]
