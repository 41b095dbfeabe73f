"""Hand-written PyTorch models for the language-v2 specs in specs/, for cross-checking the compiler.

Each model is plain ``torch.nn`` (torchvision is not used), written from the architecture's
description: the paper, and torchvision's layout where torchvision has the model, so that the
parameter counts equal the published ones:

==============================  ============  ==============================================
spec                            parameters    model
==============================  ============  ==============================================
``vit_b16.dl``                    86,567,656  ViT-B/16 (Dosovitskiy et al. 2020)
``convnext_tiny.dl``              28,589,128  ConvNeXt-T (Liu et al. 2022)
``mobilenet_v3_small.dl``          2,542,856  MobileNetV3-Small (Howard et al. 2019)
``shufflenet_v2.dl``               2,278,604  ShuffleNetV2 1.0x (Ma et al. 2018)
``efficientnet_b0.dl``             5,288,548  EfficientNet-B0 (Tan & Le 2019)
``wavenet.dl``                       199,616  a small WaveNet (van den Oord et al. 2016)
==============================  ============  ==============================================

``REFERENCES_V2`` maps a spec's file name to ``(factory, example_inputs)``, as ``REFERENCES``
in reference_models.py does: ``factory()`` builds the model with the spec's default
parameters, ``example_inputs()`` returns a tuple of small example input tensors (64 x 64
images for the convolutional networks, whose specs fix 224 x 224 as resnet18.dl does; ViT's
position embedding fixes its 224 x 224 input).

**Parameter order.** dlc lists parameters in spec order; a PyTorch module lists its own
``nn.Parameter`` attributes before its children's. The specs are written so that both orders
agree: ViT's spec creates ``class_token`` before the patch projection and ``pos_embedding``
after it (as torchvision's ``state_dict`` lists ``class_token``, ``conv_proj.*``,
``encoder.pos_embedding``), and a ConvNeXt block creates its ``layer_scale`` before its convs
(as torchvision's ``CNBlock`` lists ``layer_scale`` first). Every model's ``state_dict``
therefore matches its spec's parameters one to one, in order and shape.

Run this file to build every model, run it and print its size.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def make_divisible(v: float, divisor: int = 8) -> int:
    """The channel rounding of the MobileNet/EfficientNet papers (torchvision's
    ``_make_divisible``): the nearest multiple of ``divisor``, at least ``divisor``, and never
    more than 10% below ``v``."""
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth, "row" mode: in training, zero whole examples with probability ``p``
    and scale the others by ``1 / (1 - p)``; the identity at inference."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
    mask = mask.bernoulli_(keep)
    if keep > 0.0:
        mask = mask / keep
    return x * mask


class StochasticDepth(nn.Module):
    """``drop_path`` as a module (no parameters)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Permute(nn.Module):
    """``torch.permute`` as a module."""

    def __init__(self, *dims: int):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias, "same" padding for odd kernels), BatchNorm2d, optional activation:
    torchvision's ``Conv2dNormActivation``."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = None,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=eps, momentum=momentum),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018) as torchvision's ``SqueezeExcitation``: global
    average pool, 1x1 conv down, activation, 1x1 conv up, gate, times the input."""

    def __init__(self, c: int, squeezed: int, act: type[nn.Module], gate: type[nn.Module]):
        super().__init__()
        self.fc1 = nn.Conv2d(c, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, c, 1)
        self.act = act()
        self.gate = gate()

    def forward(self, x):
        s = self.gate(self.fc2(self.act(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * s


# --------------------------------------------------------------------------------------------
# ViT-B/16
# --------------------------------------------------------------------------------------------


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder layer of ViT (torchvision's ``EncoderBlock``): LayerNorm
    (eps 1e-6), multi-head self-attention, dropout, residual; LayerNorm, MLP (Linear, GELU,
    Dropout, Linear, Dropout), residual."""

    def __init__(self, hidden: int, heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(hidden, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, hidden),
            nn.Dropout(dropout),
        )
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)

    def forward(self, x):
        h = self.ln_1(x)
        h, _ = self.self_attention(h, h, h, need_weights=False)
        x = x + self.dropout(h)
        return x + self.mlp(self.ln_2(x))


class ViTEncoder(nn.Module):
    """Learned position embedding (init normal(0, 0.02)), dropout, the layers, LayerNorm."""

    def __init__(self, seq_len: int, layers: int, hidden: int, heads: int, mlp_dim: int, dropout):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_len, hidden).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(
            OrderedDict(
                (f"encoder_layer_{i}", EncoderBlock(hidden, heads, mlp_dim, dropout))
                for i in range(layers)
            )
        )
        self.ln = nn.LayerNorm(hidden, eps=1e-6)

    def forward(self, x):
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """ViT (Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words") in torchvision's layout
    (``vit_b_16``): a strided conv patch projection, a zero-initialised class token prepended
    to the patch tokens, a learned position embedding, pre-norm encoder layers, the class
    token's final LayerNorm output classified by one Linear (zero-initialised, as torchvision
    does without a representation layer).

    ``image_size`` only sizes the position embedding ((image_size // patch) ** 2 + 1 tokens);
    the defaults are ViT-B/16: 86,567,656 parameters.
    """

    def __init__(
        self,
        image_size: int = 224,
        patch: int = 16,
        layers: int = 12,
        hidden: int = 768,
        heads: int = 12,
        mlp_dim: int = 3072,
        classes: int = 1000,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.patch = patch
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.conv_proj = nn.Conv2d(3, hidden, patch, stride=patch)
        fan_in = 3 * patch * patch
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.conv_proj.bias)
        seq_len = (image_size // patch) ** 2 + 1
        self.encoder = ViTEncoder(seq_len, layers, hidden, heads, mlp_dim, dropout)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(hidden, classes)))
        nn.init.zeros_(self.heads.head.weight)
        nn.init.zeros_(self.heads.head.bias)

    def forward(self, x):
        p = self.conv_proj(x).flatten(2).transpose(1, 2)  # [N, patches, hidden]
        cls = self.class_token.expand(x.shape[0], -1, -1)
        h = self.encoder(torch.cat([cls, p], dim=1))
        return self.heads(h[:, 0])


# --------------------------------------------------------------------------------------------
# ConvNeXt-T
# --------------------------------------------------------------------------------------------


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of [N, C, H, W] (channels-last inside)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """ConvNeXt block (torchvision's ``CNBlock``): depthwise 7x7 conv, channels-last
    LayerNorm (eps 1e-6), Linear 4x, GELU, Linear back, layer scale (a per-channel
    ``[dim, 1, 1]`` parameter starting at 1e-6), stochastic depth, residual."""

    def __init__(self, dim: int, sd: float, scale: float = 1e-6):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), scale))
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute(0, 2, 3, 1),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute(0, 3, 1, 2),
        )
        self.stochastic_depth = StochasticDepth(sd)

    def forward(self, x):
        return x + self.stochastic_depth(self.layer_scale * self.block(x))


class ConvNeXt(nn.Module):
    """ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s") in torchvision's layout: a 4x4
    stride-4 stem with LayerNorm2d, four stages of ``CNBlock`` with a LayerNorm2d + 2x2
    stride-2 conv between stages, global average pool, LayerNorm, Linear. Stochastic depth
    rises linearly from 0 at the first block to ``sd`` at the last. Conv and Linear weights are
    trunc_normal(std=0.02), biases zero.

    Defaults are ConvNeXt-T: depths (3, 3, 9, 3), dims (96, 192, 384, 768), sd 0.1:
    28,589,128 parameters.
    """

    def __init__(
        self,
        depths=(3, 3, 9, 3),
        dims=(96, 192, 384, 768),
        classes: int = 1000,
        sd: float = 0.1,
        scale: float = 1e-6,
    ):
        super().__init__()
        total = sum(depths)
        k = 0
        features: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), LayerNorm2d(dims[0], eps=1e-6))
        ]
        for i, (dim, n) in enumerate(zip(dims, depths)):
            if i > 0:
                features.append(
                    nn.Sequential(
                        LayerNorm2d(dims[i - 1], eps=1e-6),
                        nn.Conv2d(dims[i - 1], dim, 2, stride=2),
                    )
                )
            blocks = []
            for _ in range(n):
                blocks.append(CNBlock(dim, sd * k / (total - 1) if total > 1 else 0.0, scale))
                k += 1
            features.append(nn.Sequential(*blocks))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1), nn.Linear(dims[-1], classes)
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1))


# --------------------------------------------------------------------------------------------
# MobileNetV3-Small
# --------------------------------------------------------------------------------------------

# (kernel, expanded channels, out channels, squeeze-excite, activation, stride): Table 2 of
# the paper, as torchvision's mobilenet_v3_small (width 1.0, no dilation).
MOBILENET_V3_SMALL = [
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
]
_MOBILE_BN = {"eps": 0.001, "momentum": 0.01}


class MobileInvertedResidual(nn.Module):
    """MobileNetV3 bottleneck (torchvision's ``InvertedResidual``): 1x1 expansion (omitted when
    the expansion equals the input width), depthwise conv, optional squeeze-excite (squeezed to
    make_divisible(expanded // 4), ReLU, hardsigmoid gate), linear 1x1 projection; a residual
    when the stride is 1 and the width is kept. BatchNorm eps 0.001, momentum 0.01."""

    def __init__(self, cin: int, kernel: int, expanded: int, out: int, se: bool, act, stride):
        super().__init__()
        self.use_residual = stride == 1 and cin == out
        act_layer = nn.Hardswish if act == "HS" else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(ConvBNAct(cin, expanded, 1, act=act_layer, **_MOBILE_BN))
        layers.append(
            ConvBNAct(
                expanded, expanded, kernel, stride, groups=expanded, act=act_layer, **_MOBILE_BN
            )
        )
        if se:
            squeezed = make_divisible(expanded // 4)
            layers.append(SqueezeExcite(expanded, squeezed, nn.ReLU, nn.Hardsigmoid))
        layers.append(ConvBNAct(expanded, out, 1, **_MOBILE_BN))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


class MobileNetV3Small(nn.Module):
    """MobileNetV3-Small (Howard et al. 2019, "Searching for MobileNetV3") in torchvision's
    layout: a 3x3 stride-2 stem (16, hardswish), the eleven bottlenecks of
    ``MOBILENET_V3_SMALL``, a 1x1 conv to 576 (hardswish), global average pool, Linear 1024,
    hardswish, dropout 0.2, Linear. Convs kaiming_normal(fan_out), Linears normal(0, 0.01),
    biases zero: 2,542,856 parameters.
    """

    def __init__(self, classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(3, 16, 3, 2, act=nn.Hardswish, **_MOBILE_BN)]
        cin = 16
        for kernel, expanded, out, se, act, stride in MOBILENET_V3_SMALL:
            layers.append(MobileInvertedResidual(cin, kernel, expanded, out, se, act, stride))
            cin = out
        layers.append(ConvBNAct(cin, 6 * cin, 1, act=nn.Hardswish, **_MOBILE_BN))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(6 * cin, 1024), nn.Hardswish(), nn.Dropout(dropout), nn.Linear(1024, classes)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.classifier(x)


# --------------------------------------------------------------------------------------------
# ShuffleNetV2 1.0x
# --------------------------------------------------------------------------------------------


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[N, g * k, H, W] -> view [N, g, k, H, W] -> swap g and k -> [N, k * g, H, W]."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (torchvision's ``InvertedResidual``). Stride 1: split the channels
    in halves, keep the first, run the second through 1x1 conv-BN-ReLU, depthwise 3x3 conv-BN,
    1x1 conv-BN-ReLU; concatenate. Stride 2: both branches see the whole input; branch 1 is a
    depthwise 3x3 stride-2 conv-BN then 1x1 conv-BN-ReLU, branch 2 as above with a stride-2
    depthwise conv. Then a channel shuffle with 2 groups. No conv has a bias."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        b = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                ConvBNAct(cin, cin, 3, stride, groups=cin), ConvBNAct(cin, b, 1, act=nn.ReLU)
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            ConvBNAct(cin if stride > 1 else b, b, 1, act=nn.ReLU),
            ConvBNAct(b, b, 3, stride, groups=b),
            ConvBNAct(b, b, 1, act=nn.ReLU),
        )

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat([x1, self.branch2(x2)], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 (Ma et al. 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN
    Architecture Design") in torchvision's layout (``shufflenet_v2_x1_0``): 3x3 stride-2 conv
    (24) BN ReLU, 3x3 stride-2 max pool, stages of 4, 8 and 4 units at widths 116, 232 and 464
    (the first unit of each with stride 2), a 1x1 conv to 1024 BN ReLU, global average pool,
    Linear: 2,278,604 parameters. PyTorch's default initialisation."""

    def __init__(
        self,
        classes: int = 1000,
        repeats=(4, 8, 4),
        widths=(24, 116, 232, 464, 1024),
    ):
        super().__init__()
        self.conv1 = ConvBNAct(3, widths[0], 3, 2, act=nn.ReLU)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = widths[0]
        stages = []
        for n, c in zip(repeats, widths[1:-1]):
            units = [ShuffleUnit(cin, c, 2)] + [ShuffleUnit(c, c, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*units))
            cin = c
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = ConvBNAct(cin, widths[-1], 1, act=nn.ReLU)
        self.fc = nn.Linear(widths[-1], classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


# --------------------------------------------------------------------------------------------
# EfficientNet-B0
# --------------------------------------------------------------------------------------------

# (expand ratio, kernel, stride, out channels, layers): Table 1 of the paper, as torchvision's
# efficientnet_b0 (width and depth multipliers 1.0).
EFFICIENTNET_B0 = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]


class MBConv(nn.Module):
    """EfficientNet's MBConv (torchvision's ``MBConv``): 1x1 expansion to
    make_divisible(cin * ratio) (omitted when that equals cin), depthwise conv, squeeze-excite
    (squeezed to max(1, cin // 4), SiLU, sigmoid gate), linear 1x1 projection; when the stride
    is 1 and the width is kept, stochastic depth on the branch and a residual. SiLU
    activations, BatchNorm eps 1e-5."""

    def __init__(self, cin: int, ratio: int, kernel: int, stride: int, out: int, sd: float):
        super().__init__()
        self.use_residual = stride == 1 and cin == out
        expanded = make_divisible(cin * ratio)
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(ConvBNAct(cin, expanded, 1, act=nn.SiLU))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded, act=nn.SiLU))
        layers.append(SqueezeExcite(expanded, max(1, cin // 4), nn.SiLU, nn.Sigmoid))
        layers.append(ConvBNAct(expanded, out, 1))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd)

    def forward(self, x):
        y = self.block(x)
        return x + self.stochastic_depth(y) if self.use_residual else y


class EfficientNet(nn.Module):
    """EfficientNet-B0 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for CNNs") in
    torchvision's layout (``efficientnet_b0``): 3x3 stride-2 stem (32, SiLU), the 16 MBConv
    blocks of ``EFFICIENTNET_B0``, 1x1 conv to 1280 (SiLU), global average pool, dropout 0.2,
    Linear. Stochastic depth of block k (0-based, of 16) is ``sd * k / 16``. Convs
    kaiming_normal(fan_out), the Linear uniform(+-1/sqrt(classes)), biases zero: 5,288,548
    parameters.
    """

    def __init__(
        self, classes: int = 1000, sd: float = 0.2, dropout: float = 0.2, stages=EFFICIENTNET_B0
    ):
        super().__init__()
        total = sum(s[-1] for s in stages)
        layers: list[nn.Module] = [ConvBNAct(3, 32, 3, 2, act=nn.SiLU)]
        cin, k = 32, 0
        for ratio, kernel, stride, out, n in stages:
            blocks = []
            for i in range(n):
                blocks.append(
                    MBConv(cin, ratio, kernel, stride if i == 0 else 1, out, sd * k / total)
                )
                cin, k = out, k + 1
            layers.append(nn.Sequential(*blocks))
        layers.append(ConvBNAct(cin, 4 * cin, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * cin, classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.classifier(x)


# --------------------------------------------------------------------------------------------
# A small WaveNet
# --------------------------------------------------------------------------------------------


class CausalConv1d(nn.Conv1d):
    """Conv1d padded on the left only, so the output at t sees inputs up to t."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int = 1):
        super().__init__(cin, cout, kernel, dilation=dilation)
        self.left_pad = (kernel - 1) * dilation

    def forward(self, x):
        return super().forward(F.pad(x, (self.left_pad, 0)))


class WaveNetUnit(nn.Module):
    """A gated residual unit: one dilated causal conv (kernel 2) to 2c channels, split into a
    filter and a gate half, ``tanh(filter) * sigmoid(gate)``, then a 1x1 conv back to c added
    to the input (the residual) and a 1x1 conv to ``skip`` channels (the skip). The last unit
    of a stack has no residual conv (its residual would reach nothing): it returns the skip
    alone."""

    def __init__(self, c: int, skip: int, dilation: int, last: bool = False):
        super().__init__()
        self.dilated = CausalConv1d(c, 2 * c, 2, dilation)
        self.residual = None if last else nn.Conv1d(c, c, 1)
        self.skip = nn.Conv1d(c, skip, 1)

    def forward(self, x):
        f, g = self.dilated(x).chunk(2, dim=1)
        z = torch.tanh(f) * torch.sigmoid(g)
        if self.residual is None:
            return self.skip(z)
        return x + self.residual(z), self.skip(z)


class WaveNet(nn.Module):
    """A small WaveNet (van den Oord et al. 2016), our own sizing: [N, 1, T] samples, a causal
    conv (kernel 2) to ``channels``, ``stacks`` x ``layers`` gated units with dilations
    1, 2, ..., 2 ** (layers - 1) per stack, the sum of their skips, ReLU, 1x1 conv, ReLU, 1x1
    conv to ``classes`` logits per step ([N, classes, T]; 256 = 8-bit mu-law). Every output step
    sees only the samples up to it (receptive field 2 + stacks * (2 ** layers - 1)).

    Defaults: 2 stacks of 8 units, 32 residual and 128 skip channels, 256 classes: 199,616
    parameters.
    """

    def __init__(
        self,
        classes: int = 256,
        channels: int = 32,
        skip: int = 128,
        stacks: int = 2,
        layers: int = 8,
    ):
        super().__init__()
        n = stacks * layers
        self.causal = CausalConv1d(1, channels, 2)
        self.units = nn.ModuleList(
            WaveNetUnit(channels, skip, 2 ** (k % layers), last=k == n - 1) for k in range(n)
        )
        self.head1 = nn.Conv1d(skip, skip, 1)
        self.head2 = nn.Conv1d(skip, classes, 1)

    def forward(self, x):
        h = self.causal(x)
        total = None
        for unit in self.units:
            if unit.residual is None:
                s = unit(h)
            else:
                h, s = unit(h)
            total = s if total is None else total + s
        return self.head2(F.relu(self.head1(F.relu(total))))


# --------------------------------------------------------------------------------------------


def _images(channels: int, size: int, batch: int = 2):
    return lambda: (torch.randn(batch, channels, size, size),)


REFERENCES_V2 = {
    "vit_b16.dl": (VisionTransformer, _images(3, 224, batch=1)),
    "convnext_tiny.dl": (ConvNeXt, _images(3, 64)),
    "mobilenet_v3_small.dl": (MobileNetV3Small, _images(3, 64)),
    "shufflenet_v2.dl": (ShuffleNetV2, _images(3, 64)),
    "efficientnet_b0.dl": (EfficientNet, _images(3, 64)),
    "wavenet.dl": (WaveNet, lambda: (torch.randn(2, 1, 100),)),
}

# Published parameter counts (torchvision's model cards; the WaveNet's is our own design's).
PUBLISHED_V2 = {
    "vit_b16.dl": 86_567_656,
    "convnext_tiny.dl": 28_589_128,
    "mobilenet_v3_small.dl": 2_542_856,
    "shufflenet_v2.dl": 2_278_604,
    "efficientnet_b0.dl": 5_288_548,
    "wavenet.dl": 199_616,
}


if __name__ == "__main__":
    torch.manual_seed(0)
    for name, (factory, example_inputs) in REFERENCES_V2.items():
        model = factory().eval()
        with torch.no_grad():
            out = model(*example_inputs())
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:24} {params:>12,}  output {list(out.shape)}")
