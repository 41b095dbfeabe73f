"""training/augment.py: each transform against an independent reference (numpy, torch.flip,
torch.rot90, torch.roll, factors recovered from the output), plus determinism and errors."""

import numpy as np
import pytest
import torch

from dlc.training import augment
from dlc.training.augment import AUGMENTATIONS, apply, normalize_only


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rand(*shape, seed=1):
    return torch.rand(*shape, generator=gen(seed))


def gray(x):
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


# ---------------------------------------------------------------------------- random_crop


@pytest.mark.parametrize("size", [(4, 3), 4])
def test_random_crop_is_a_slice_of_the_padded_input(size):
    x = rand(64, 2, 5, 6)
    out = AUGMENTATIONS["random_crop"](x, gen(), size=size, padding=1)
    h, w = (size, size) if isinstance(size, int) else size
    assert out.shape == (64, 2, h, w)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    offsets = set()
    for i in range(64):
        found = [
            (t, l)
            for t in range(padded.shape[2] - h + 1)
            for l in range(padded.shape[3] - w + 1)
            if np.array_equal(padded[i, :, t : t + h, l : l + w], out[i].numpy())
        ]
        assert found, f"example {i} is no crop of the padded input"
        offsets.update(found)
    assert len(offsets) > 5  # offsets are drawn per example


def test_random_crop_too_big():
    with pytest.raises(ValueError, match="exceeds"):
        AUGMENTATIONS["random_crop"](rand(2, 1, 4, 4), gen(), size=7, padding=1)


# ---------------------------------------------------------------------------- flips


@pytest.mark.parametrize("name, dim", [("hflip", -1), ("vflip", -2)])
def test_flips(name, dim):
    flip = AUGMENTATIONS[name]
    x = rand(2000, 1, 2, 3)
    assert torch.equal(flip(x, gen(), p=1.0), torch.flip(x, (dim,)))
    assert torch.equal(flip(x, gen(), p=0.0), x)
    out = flip(x, gen(), p=0.5)
    same = (out == x).flatten(1).all(1)
    flipped = (out == torch.flip(x, (dim,))).flatten(1).all(1)
    assert bool((same | flipped).all())
    assert abs(flipped.float().mean().item() - 0.5) < 0.05


# ---------------------------------------------------------------------------- rotate


def test_rotate_zero_degrees_is_identity():
    x = rand(4, 3, 7, 9)
    assert torch.allclose(AUGMENTATIONS["rotate"](x, gen(), degrees=0), x, atol=1e-5)


@pytest.mark.parametrize("size", [5, 7])
def test_rotate_by_90_matches_rot90(size):
    x = rand(2, 3, size, size)
    for angle, k in [(90.0, 1), (-90.0, -1)]:
        out = augment._rotate_by(x, torch.tensor([angle, angle]))
        assert torch.allclose(out, torch.rot90(x, k, (-2, -1)), atol=1e-5)


def test_rotate_by_90_non_square_keeps_pixels_square():
    x = rand(1, 1, 5, 9)
    out = augment._rotate_by(x, torch.tensor([90.0]))
    # The rotated 9x5 image is centred in the 5x9 frame: its middle 5 rows fill columns 2..6.
    expect = torch.zeros_like(x)
    expect[..., 2:7] = torch.rot90(x, 1, (-2, -1))[..., 2:7, :]
    assert torch.allclose(out, expect, atol=1e-5)


def test_rotate_angles_vary_per_example():
    x = rand(1, 1, 9, 9).expand(8, 1, 9, 9)
    out = AUGMENTATIONS["rotate"](x, gen(), degrees=45)
    assert not torch.allclose(out[0], out[1])


# ---------------------------------------------------------------------------- color_jitter


def test_brightness_scales_each_example():
    x = rand(32, 3, 4, 4) + 0.5
    out = AUGMENTATIONS["color_jitter"](x, gen(), brightness=0.4)
    f = out.flatten(1).sum(1) / x.flatten(1).sum(1)
    assert torch.allclose(out, x * f.view(-1, 1, 1, 1), rtol=1e-5)
    assert bool(((f >= 0.6 - 1e-5) & (f <= 1.4 + 1e-5)).all())
    assert f.std() > 0.05


def test_contrast_blends_with_the_mean_gray():
    x = rand(16, 3, 4, 4)
    out = AUGMENTATIONS["color_jitter"](x, gen(), contrast=0.5)
    m = gray(x).flatten(1).mean(1).view(-1, 1, 1, 1)
    c = (out - m).flatten(1).sum(1) / (x - m).flatten(1).sum(1)
    assert torch.allclose(out, m + c.view(-1, 1, 1, 1) * (x - m), atol=1e-5)
    assert bool(((c >= 0.5 - 1e-4) & (c <= 1.5 + 1e-4)).all())


def test_saturation_blends_with_gray_per_pixel():
    x = rand(16, 3, 4, 4)
    out = AUGMENTATIONS["color_jitter"](x, gen(), saturation=1.0)
    g = gray(x).unsqueeze(1)
    s = ((out - g) * (x - g)).flatten(1).sum(1) / ((x - g) ** 2).flatten(1).sum(1)
    assert torch.allclose(out, g + s.view(-1, 1, 1, 1) * (x - g), atol=1e-5)
    assert bool(((s >= -1e-5) & (s <= 2 + 1e-5)).all())


def test_hue():
    x = rand(16, 3, 4, 4)
    assert torch.equal(AUGMENTATIONS["color_jitter"](x, gen(), hue=0), x)
    out = AUGMENTATIONS["color_jitter"](x, gen(), hue=0.5)
    assert not torch.allclose(out, x, atol=1e-3)
    assert torch.allclose(gray(out), gray(x), atol=1e-5)  # YIQ rotation keeps Y
    grey = rand(4, 1, 4, 4).expand(4, 3, 4, 4)  # no chroma: no hue to shift
    assert torch.allclose(AUGMENTATIONS["color_jitter"](grey, gen(), hue=0.5), grey, atol=1e-5)
    # A positive shift moves red towards yellow (green grows, blue does not), as in HSV.
    red = augment._hue_matrices(torch.tensor([0.1])) @ torch.tensor(
        [1.0, 0, 0], dtype=torch.float64
    )
    assert red[0, 1] > 0.1 and red[0, 1] > red[0, 2] + 0.1


# ---------------------------------------------------------------------------- random_erasing


def test_random_erasing_one_rectangle():
    x = rand(64, 3, 12, 10) + 1  # values in [1, 2): the fill value -5 never occurs
    out = AUGMENTATIONS["random_erasing"](
        x, gen(), p=1.0, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=-5
    )
    areas = set()
    for i in range(64):
        erased = (out[i] == -5).all(0)
        assert bool(((out[i] == -5) == erased).all())  # every channel erased alike
        rows = torch.nonzero(erased.any(1)).flatten()
        cols = torch.nonzero(erased.any(0)).flatten()
        assert len(rows) and len(cols)
        box = torch.zeros_like(erased)
        box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        assert torch.equal(erased, box), f"example {i} is not one rectangle"
        assert torch.equal(out[i][:, ~erased], x[i][:, ~erased])
        areas.add(int(erased.sum()))
    assert len(areas) > 5
    assert torch.equal(AUGMENTATIONS["random_erasing"](x, gen(), p=0.0), x)


# ---------------------------------------------------------------------------- noise, time_shift


def test_noise_statistics():
    x = torch.zeros(200, 1000)
    out = AUGMENTATIONS["noise"](x, gen(), std=0.3)
    assert abs(out.mean().item()) < 0.005
    assert abs(out.std().item() - 0.3) < 0.005


def test_time_shift_is_a_roll():
    x = torch.arange(64 * 2 * 11, dtype=torch.float32).view(64, 2, 11)
    out = AUGMENTATIONS["time_shift"](x, gen(), max=3)
    shifts = set()
    for i in range(64):
        found = [s for s in range(-3, 4) if torch.equal(out[i], torch.roll(x[i], s, -1))]
        assert len(found) == 1, f"example {i} is no roll by [-3, 3]"
        shifts.add(found[0])
    assert shifts == set(range(-3, 4))


# ---------------------------------------------------------------------------- normalize


def test_normalize_per_channel_and_scalar():
    x = rand(4, 3, 2, 2)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = AUGMENTATIONS["normalize"](x, gen(), mean=mean, std=std)
    for c in range(3):
        assert torch.allclose(out[:, c], (x[:, c] - mean[c]) / std[c])
    assert torch.allclose(AUGMENTATIONS["normalize"](x, None, mean=0.5, std=2), (x - 0.5) / 2)
    with pytest.raises(ValueError, match="2 per-channel values but the batch has 3 channels"):
        AUGMENTATIONS["normalize"](x, None, mean=(0.1, 0.2), std=1)


def test_normalize_only_skips_random_steps():
    x = rand(4, 3, 8, 8)
    steps = [
        ("hflip", {"p": 1.0}),
        ("noise", {"std": 1.0}),
        ("normalize", {"mean": (0.5, 0.4, 0.3), "std": 0.2}),
    ]
    expect = (x - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / 0.2
    assert torch.allclose(normalize_only(x, steps), expect)
    assert torch.equal(normalize_only(x, [("noise", {"std": 1.0})]), x)


# ---------------------------------------------------------------------------- apply


FULL = [
    ("random_crop", {"size": (12, 12), "padding": 2}),
    ("hflip", {"p": 0.5}),
    ("vflip", {"p": 0.5}),
    ("rotate", {"degrees": 15}),
    ("color_jitter", {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.1}),
    ("random_erasing", {"p": 0.5, "scale": (0.02, 0.33), "ratio": (0.3, 3.3), "value": 0}),
    ("noise", {"std": 0.05}),
    ("time_shift", {"max": 2}),
    ("normalize", {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}),
]


def test_apply_is_deterministic_per_seed():
    x = rand(8, 3, 16, 16)
    a, b = apply(x, FULL, gen(7)), apply(x, FULL, gen(7))
    assert a.shape == (8, 3, 12, 12)
    assert torch.equal(a, b)
    assert not torch.equal(a, apply(x, FULL, gen(8)))
    assert apply(x, [], gen()) is x


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_apply_keeps_dtype(dtype):
    out = apply(rand(4, 3, 16, 16).to(dtype), FULL, gen())
    assert out.dtype == dtype and bool(out.isfinite().all())


@pytest.mark.parametrize(
    "name, args, shape",
    [
        ("rotate", {"degrees": 10}, (2, 8, 8)),
        ("random_crop", {"size": 2, "padding": 0}, (2, 8)),
        ("vflip", {"p": 0.5}, (2, 8)),
        ("random_erasing", {"p": 0.5}, (2, 8)),
        ("time_shift", {"max": 1}, (8,)),
        ("color_jitter", {"hue": 0.1}, (2, 1, 4, 4)),
        ("no_such_thing", {}, (2, 3, 4, 4)),
    ],
)
def test_wrong_input_is_a_value_error(name, args, shape):
    with pytest.raises(ValueError):
        apply(torch.zeros(shape), [(name, args)], gen())
