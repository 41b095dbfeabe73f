"""The hand-written v2 reference models (tests/reference_models_v2.py): published parameter
counts, small forward and backward passes, stochastic depth, channel shuffle, causality.

The full-size models are only built (their counts); the forward passes run on small
configurations so that the file stays fast.
"""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reference_models_v2 import (  # noqa: E402  (needs torch)
    EFFICIENTNET_B0,
    PUBLISHED_V2,
    REFERENCES_V2,
    CNBlock,
    ConvNeXt,
    EfficientNet,
    MBConv,
    MobileNetV3Small,
    ShuffleNetV2,
    VisionTransformer,
    WaveNet,
    channel_shuffle,
    drop_path,
    make_divisible,
)

SPECS = Path(__file__).parent.parent / "specs"


def spec(name: str) -> Path:
    return SPECS / name


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_reference_has_a_spec():
    assert all(spec(name).exists() for name in REFERENCES_V2)
    assert sorted(PUBLISHED_V2) == sorted(REFERENCES_V2)


@pytest.mark.parametrize("name", sorted(PUBLISHED_V2))
def test_published_counts(name):
    factory, _ = REFERENCES_V2[name]
    params = PUBLISHED_V2[name]
    assert count(factory()) == params
    header = spec(name).read_text().split("\n\n")[0]
    assert f"{params:,}" in header  # the spec's header comment names the count


# Small configurations: (model, input shape, output shape).
SMALL = {
    "vit": (
        lambda: VisionTransformer(
            image_size=32, layers=2, hidden=32, heads=4, mlp_dim=64, classes=10
        ),
        (2, 3, 32, 32),
        (2, 10),
    ),
    "convnext": (
        lambda: ConvNeXt(depths=(1, 1, 2, 1), dims=(8, 16, 32, 64), classes=10),
        (2, 3, 64, 64),
        (2, 10),
    ),
    "mobilenet_v3_small": (lambda: MobileNetV3Small(classes=10), (2, 3, 64, 64), (2, 10)),
    "shufflenet_v2": (
        lambda: ShuffleNetV2(classes=10, widths=(8, 16, 32, 64, 128)),
        (2, 3, 64, 64),
        (2, 10),
    ),
    "efficientnet_b0": (  # one block a stage, two in the first (a residual with drop_path)
        lambda: EfficientNet(
            classes=10,
            stages=[
                (r, k, s, c, 1 + (i == 0)) for i, (r, k, s, c, _) in enumerate(EFFICIENTNET_B0)
            ],
        ),
        (2, 3, 32, 32),
        (2, 10),
    ),
    "wavenet": (lambda: WaveNet(channels=8, skip=16, layers=4), (2, 1, 40), (2, 256, 40)),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_models_run_and_train(name):
    factory, shape, out_shape = SMALL[name]
    torch.manual_seed(0)
    model = factory()
    x = torch.randn(shape)
    with torch.no_grad():
        out = model.eval()(x)
    assert tuple(out.shape) == out_shape
    assert torch.isfinite(out).all()
    model.train()(x).square().mean().backward()  # stochastic depth and dropout active
    assert all(p.grad is not None for p in model.parameters())


def test_vit_position_embedding_and_state_dict_order():
    vit = VisionTransformer(image_size=64, layers=1, hidden=16, heads=2, mlp_dim=32)
    assert tuple(vit.encoder.pos_embedding.shape) == (1, (64 // 16) ** 2 + 1, 16)
    # the spec's order: class_token, patch projection, pos_embedding, layers, norm, head
    keys = list(vit.state_dict())
    assert keys[:4] == [
        "class_token",
        "conv_proj.weight",
        "conv_proj.bias",
        "encoder.pos_embedding",
    ]
    assert keys[-4:] == [
        "encoder.ln.weight",
        "encoder.ln.bias",
        "heads.head.weight",
        "heads.head.bias",
    ]


def test_convnext_layer_scale_and_stochastic_depth_rates():
    narrow = ConvNeXt(dims=(8, 8, 8, 8))  # the rates depend on the depths only
    blocks = [m for m in narrow.modules() if isinstance(m, CNBlock)]
    assert len(blocks) == 18
    rates = [b.stochastic_depth.p for b in blocks]
    assert rates == pytest.approx([0.1 * k / 17 for k in range(18)])
    block = CNBlock(8, 0.0)
    assert torch.equal(block.layer_scale, torch.full((8, 1, 1), 1e-6))
    assert next(iter(block.state_dict())) == "layer_scale"  # before the convs, as the spec


def test_efficientnet_stochastic_depth_rates():
    blocks = [m for m in EfficientNet().modules() if isinstance(m, MBConv)]
    assert len(blocks) == 16
    assert [b.stochastic_depth.p for b in blocks] == pytest.approx(
        [0.2 * k / 16 for k in range(16)]
    )


def test_drop_path():
    torch.manual_seed(0)
    x = torch.ones(4000, 3, 2)
    assert drop_path(x, 0.25, training=False) is x
    y = drop_path(x, 0.25, training=True)
    rows = y.flatten(1)
    assert ((rows == 0).all(1) | (rows == 1 / 0.75).all(1)).all()  # whole examples
    assert abs((rows[:, 0] == 0).float().mean().item() - 0.25) < 0.03
    assert torch.equal(drop_path(x, 0.0, training=True), x)


def test_channel_shuffle_matches_torch():
    x = torch.randn(2, 12, 3, 3)
    torch.testing.assert_close(channel_shuffle(x, 2), torch.nn.ChannelShuffle(2)(x))


def test_make_divisible():
    assert [make_divisible(v) for v in (4, 16, 18, 30, 60, 144, 3.2)] == [
        8,
        16,
        24,
        32,
        64,
        144,
        8,
    ]


def test_wavenet_is_causal():
    torch.manual_seed(0)
    model = WaveNet(channels=8, skip=16, layers=4).eval()
    x = torch.randn(1, 1, 50)
    x2 = x.clone()
    x2[..., 30:] = torch.randn(1, 1, 20)
    with torch.no_grad():
        a, b = model(x), model(x2)
    torch.testing.assert_close(a[..., :30], b[..., :30])
    assert not torch.allclose(a[..., 30:], b[..., 30:])
