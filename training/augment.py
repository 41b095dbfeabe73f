"""Data augmentation for ``train`` recipes (LANGUAGE §11, ``augment``).

Every transform works on a whole batch (batch axis first) on the batch's own device, draws
independent random parameters per example, and takes all its randomness from the
``torch.Generator`` it is given, so a seeded run (and a resumed one) sees the same stream.
We write these few kernels ourselves rather than depend on torchvision (which does not load
with the CPU build of torch we use) or kornia (which draws from torch's global RNG and would
break those seeded, resumable streams).

Args arrive fully resolved (defaults filled in by the caller). Values are never clamped: the
input may already be normalised, so there is no fixed valid range to clamp to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------- helpers


def _rand(gen: torch.Generator, n: int, x: torch.Tensor) -> torch.Tensor:
    """``n`` float32 uniforms in [0, 1) from ``gen``, moved to ``x``'s device.

    A generator can only draw on its own device (a CPU generator cannot fill a CUDA tensor),
    so draw there and move; float32 keeps parameters precise even for half-precision batches.
    """
    return torch.rand(n, generator=gen, device=gen.device).to(x.device)


def _uniform(gen: torch.Generator, x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """One float32 uniform in [lo, hi) per example of ``x``."""
    return lo + (hi - lo) * _rand(gen, x.shape[0], x)


def _per_example(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Shape a per-example vector (N,) to broadcast against ``x``, in ``x``'s dtype."""
    return v.to(x.dtype).view(-1, *[1] * (x.dim() - 1))


def _need_rank(x: torch.Tensor, name: str, least: int, what: str, exact: bool = False) -> None:
    """The backstop for a transform given a tensor it cannot handle."""
    if x.dim() < least or (exact and x.dim() != least):
        rank = f"rank {least}" if exact else f"rank >= {least}"
        raise ValueError(
            f"augmentation {name} needs a {rank} batch ({what}); got shape {tuple(x.shape)}"
        )


def _per_channel(v: float | Sequence[float], x: torch.Tensor, name: str) -> torch.Tensor | float:
    """A number, or a per-channel sequence shaped to broadcast along axis 1 of ``x``."""
    if isinstance(v, (int, float)):
        return float(v)
    v = [float(e) for e in v]
    if len(v) == 1:  # one value for every channel (the recipe's `normalize(0.5, 0.25)`)
        return v[0]
    if x.dim() < 2 or x.shape[1] != len(v):
        channels = x.shape[1] if x.dim() >= 2 else "no"
        raise ValueError(
            f"augmentation {name}: {len(v)} per-channel values but the batch has {channels} "
            f"channels on axis 1 (shape {tuple(x.shape)})"
        )
    return torch.tensor(v, dtype=x.dtype, device=x.device).view(1, -1, *[1] * (x.dim() - 2))


# ---------------------------------------------------------------------------- geometric


def random_crop(
    x: torch.Tensor, gen: torch.Generator, size: int | Sequence[int], padding: int = 0
) -> torch.Tensor:
    """Zero-pad the last two axes by ``padding``; crop ``size`` at a random offset per example."""
    _need_rank(x, "random_crop", 3, "the last two axes are spatial")
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))
    n, hp, wp = x.shape[0], x.shape[-2], x.shape[-1]
    if h > hp or w > wp:
        raise ValueError(f"augmentation random_crop: size {(h, w)} exceeds the padded {(hp, wp)}")
    top = (_rand(gen, n, x) * (hp - h + 1)).long()
    left = (_rand(gen, n, x) * (wp - w + 1)).long()
    rows = top[:, None] + torch.arange(h, device=x.device)  # (N, h)
    cols = left[:, None] + torch.arange(w, device=x.device)  # (N, w)
    # Fold the middle axes into one so a single advanced index picks (N, M, h, w).
    flat = x.reshape(n, -1, hp, wp)
    mid = torch.arange(flat.shape[1], device=x.device)
    batch = torch.arange(n, device=x.device)
    out = flat[
        batch[:, None, None, None],
        mid[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return out.reshape(*x.shape[:-2], h, w)


def _flip(x: torch.Tensor, gen: torch.Generator, p: float, dim: int) -> torch.Tensor:
    mask = _rand(gen, x.shape[0], x) < p
    return torch.where(mask.view(-1, *[1] * (x.dim() - 1)), x.flip(dim), x)


def hflip(x: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Flip the last axis of each example with probability ``p``."""
    _need_rank(x, "hflip", 2, "the last axis is flipped")
    return _flip(x, gen, p, -1)


def vflip(x: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Flip the second-to-last axis of each example with probability ``p``."""
    _need_rank(x, "vflip", 3, "the second-to-last axis is flipped")
    return _flip(x, gen, p, -2)


def _rotate_by(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image of an (N, C, H, W) batch counter-clockwise (as displayed) by its angle
    about the centre: bilinear, zero fill."""
    n, _, hgt, wid = x.shape
    a = torch.deg2rad(degrees.to(device=x.device, dtype=torch.float32))
    cos, sin = torch.cos(a), torch.sin(a)
    # affine_grid maps each output point to the input point it samples, in coordinates
    # normalised to [-1, 1] per axis. A rotation is only a rotation in pixel units, so the
    # off-diagonal terms carry the aspect ratio (pixel = normalised * size / 2).
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * hgt / wid
    theta[:, 1, 0] = sin * wid / hgt
    theta[:, 1, 1] = cos
    # Sample in float32: half-precision grid coordinates would be off by whole pixels.
    src = x.float()
    grid = F.affine_grid(theta, list(src.shape), align_corners=False)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.to(x.dtype)


def rotate(x: torch.Tensor, gen: torch.Generator, degrees: float) -> torch.Tensor:
    """Rotate each example by an angle uniform in [-degrees, degrees]."""
    _need_rank(x, "rotate", 4, "(N, C, H, W) images", exact=True)
    return _rotate_by(x, _uniform(gen, x, -degrees, degrees))


# ---------------------------------------------------------------------------- colour

_GRAY = (0.299, 0.587, 0.114)
# RGB -> YIQ (NTSC). Y is the grayscale above; hue is the angle of the chroma (I, Q).
_YIQ = torch.tensor(
    [_GRAY, (0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135)],
    dtype=torch.float64,
)
_YIQ_INV = torch.linalg.inv(_YIQ)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Grayscale (N, 1, ...): luma weights for RGB, the channel mean for any other count."""
    if x.shape[1] == 3:
        w = torch.tensor(_GRAY, dtype=x.dtype, device=x.device).view(1, 3, *[1] * (x.dim() - 2))
        return (x * w).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def _hue_matrices(turns: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) RGB matrices shifting hue by ``turns`` of a circle: a rotation of the YIQ chroma
    plane. It is linear, so it approximates (and does not equal) torchvision's HSV hue shift;
    it keeps Y, the grayscale, exactly."""
    a = -2 * math.pi * turns.double()  # HSV hue runs red -> green -> blue: clockwise in (I, Q)
    rot = torch.zeros(turns.shape[0], 3, 3, dtype=torch.float64, device=turns.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = torch.cos(a), -torch.sin(a)
    rot[:, 2, 1], rot[:, 2, 2] = torch.sin(a), torch.cos(a)
    return _YIQ_INV.to(turns.device) @ rot @ _YIQ.to(turns.device)


def color_jitter(
    x: torch.Tensor,
    gen: torch.Generator,
    brightness: float = 0,
    contrast: float = 0,
    saturation: float = 0,
    hue: float = 0,
) -> torch.Tensor:
    """torchvision's ColorJitter per example, applied in the fixed order brightness, contrast,
    saturation, hue (torchvision shuffles the order). Channels are axis 1."""
    _need_rank(x, "color_jitter", 3, "channels on axis 1, then spatial axes")
    if (saturation or hue) and x.shape[1] != 3:
        raise ValueError(
            f"augmentation color_jitter: saturation and hue need 3 (RGB) channels on axis 1; "
            f"got shape {tuple(x.shape)}"
        )
    if brightness:
        x = x * _per_example(_uniform(gen, x, max(0.0, 1 - brightness), 1 + brightness), x)
    if contrast:
        c = _per_example(_uniform(gen, x, max(0.0, 1 - contrast), 1 + contrast), x)
        mean = _gray(x).mean(dim=tuple(range(1, x.dim())), keepdim=True)
        x = x * c + mean * (1 - c)
    if saturation:
        s = _per_example(_uniform(gen, x, max(0.0, 1 - saturation), 1 + saturation), x)
        x = x * s + _gray(x) * (1 - s)
    if hue:
        m = _hue_matrices(_uniform(gen, x, -hue, hue)).to(x.dtype)
        x = torch.einsum("nij,nj...->ni...", m, x)
    return x


# ---------------------------------------------------------------------------- occlusion, noise


def random_erasing(
    x: torch.Tensor,
    gen: torch.Generator,
    p: float = 0.5,
    scale: Sequence[float] = (0.02, 0.33),
    ratio: Sequence[float] = (0.3, 3.3),
    value: float | Sequence[float] = 0,
) -> torch.Tensor:
    """With probability ``p`` per example, set one rectangle of the last two axes to ``value``:
    area a fraction uniform in ``scale`` of the image, aspect (h / w) log-uniform in ``ratio``,
    clipped to the image, at a uniform position."""
    _need_rank(x, "random_erasing", 3, "the last two axes are spatial")
    n, hgt, wid = x.shape[0], x.shape[-2], x.shape[-1]
    erase = _rand(gen, n, x) < p
    area = _uniform(gen, x, scale[0], scale[1]) * (hgt * wid)
    aspect = torch.exp(_uniform(gen, x, math.log(ratio[0]), math.log(ratio[1])))
    h = torch.sqrt(area * aspect).round().clamp(1, hgt).long()
    w = torch.sqrt(area / aspect).round().clamp(1, wid).long()
    top = (_rand(gen, n, x) * (hgt - h + 1)).long()
    left = (_rand(gen, n, x) * (wid - w + 1)).long()
    r = torch.arange(hgt, device=x.device)
    c = torch.arange(wid, device=x.device)
    in_rows = (r >= top[:, None]) & (r < (top + h)[:, None])  # (N, H)
    in_cols = (c >= left[:, None]) & (c < (left + w)[:, None])  # (N, W)
    mask = (in_rows[:, :, None] & in_cols[:, None, :]) & erase[:, None, None]  # (N, H, W)
    mask = mask.view(n, *[1] * (x.dim() - 3), hgt, wid)
    fill = _per_channel(value, x, "random_erasing")
    return torch.where(mask, torch.as_tensor(fill, dtype=x.dtype, device=x.device), x)


def noise(x: torch.Tensor, gen: torch.Generator, std: float) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``std``."""
    z = torch.randn(x.shape, generator=gen, device=gen.device).to(x.device, x.dtype)
    return x + std * z


def time_shift(x: torch.Tensor, gen: torch.Generator, max: int) -> torch.Tensor:
    """Roll each example circularly along the last axis by an integer uniform in [-max, max]."""
    _need_rank(x, "time_shift", 2, "the last axis is time")
    n, length = x.shape[0], x.shape[-1]
    shift = (_rand(gen, n, x) * (2 * max + 1)).long() - max
    # torch.roll semantics: out[i] = x[(i - shift) mod L].
    idx = (torch.arange(length, device=x.device) - shift[:, None]) % length  # (N, L)
    return x.gather(-1, idx.view(n, *[1] * (x.dim() - 2), length).expand_as(x))


# ---------------------------------------------------------------------------- normalize


def normalize(
    x: torch.Tensor,
    gen: torch.Generator | None,
    mean: float | Sequence[float],
    std: float | Sequence[float],
) -> torch.Tensor:
    """``(x - mean) / std``, per channel (axis 1) for sequences. Deterministic: ``gen`` unused."""
    return (x - _per_channel(mean, x, "normalize")) / _per_channel(std, x, "normalize")


AUGMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "random_crop": random_crop,
    "hflip": hflip,
    "vflip": vflip,
    "rotate": rotate,
    "color_jitter": color_jitter,
    "random_erasing": random_erasing,
    "noise": noise,
    "time_shift": time_shift,
    "normalize": normalize,
}


def apply(
    x: torch.Tensor, steps: Sequence[tuple[str, Mapping[str, Any]]], gen: torch.Generator
) -> torch.Tensor:
    """Apply each augmentation ``(name, args)`` in order to a training batch ``x`` (float tensor,
    batch axis first). ``normalize`` included."""
    for name, args in steps:
        kernel = AUGMENTATIONS.get(name)
        if kernel is None:
            raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS)}")
        x = kernel(x, gen, **args)
    return x


def normalize_only(x: torch.Tensor, steps: Sequence[tuple[str, Mapping[str, Any]]]) -> torch.Tensor:
    """Evaluation batches: only the ``normalize`` steps (every split gets them), no randomness."""
    for name, args in steps:
        if name == "normalize":
            x = normalize(x, None, **args)
    return x
