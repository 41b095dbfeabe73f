"""Hand-written PyTorch models, one per bundled spec in specs/, for cross-checking the compiler.

Each model is written the way a PyTorch user would write it, independently of the spec.
``REFERENCES`` maps a spec's file name to ``(factory, example_inputs)``: ``factory()`` builds
the model with the spec's default parameters, ``example_inputs()`` returns a tuple of small
example input tensors. Run this file to build every model, run it and print its size.
"""

import math

import torch
import torch.nn.functional as F
from reference_models_v2 import REFERENCES_V2, CausalConv1d
from torch import nn


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """PE[t, 2i] = sin(t / 10000^(2i/D)), PE[t, 2i+1] = cos(t / 10000^(2i/D)), shape [T, D]."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def causal_mask(length: int) -> torch.Tensor:
    """Boolean mask that hides future positions from nn.MultiheadAttention."""
    return torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)


class LeNet5(nn.Module):
    """LeNet-5 with tanh and average pooling, for 32x32 grey images."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with a projection shortcut when the shape changes."""

    def __init__(self, cin: int, c: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or cin != c:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, c, 1, stride=stride, bias=False), nn.BatchNorm2d(c)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: 1x1, 3x3 (strided), 1x1 expanding by 4."""

    expansion = 4

    def __init__(self, cin: int, c: int, stride: int = 1):
        super().__init__()
        cout = c * self.expansion
        self.conv1 = nn.Conv2d(cin, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """ResNet in torchvision's layout: stem, four stages of residual blocks, pooled classifier."""

    def __init__(self, block, depths, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        stages = []
        for c, n, stride in zip((64, 128, 256, 512), depths, (1, 2, 2, 2), strict=True):
            blocks = []
            for i in range(n):
                blocks.append(block(cin, c, stride if i == 0 else 1))
                cin = c * getattr(block, "expansion", 1)
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SentimentLSTM(nn.Module):
    """Embedding, 2-layer bidirectional LSTM, classifier on the last time step."""

    def __init__(self, vocab: int = 20000):
        super().__init__()
        self.embedding = nn.Embedding(vocab, 128)
        self.lstm = nn.LSTM(
            128, 256, num_layers=2, bidirectional=True, dropout=0.2, batch_first=True
        )
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(2 * 256, 2)

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(self.dropout(out[:, -1]))


class TCNBlock(nn.Module):
    """Two dilated causal convs with a residual connection (1x1 conv when channels change)."""

    def __init__(self, cin: int, c: int, dilation: int):
        super().__init__()
        self.conv1 = CausalConv1d(cin, c, 3, dilation)
        self.conv2 = CausalConv1d(c, c, 3, dilation)
        self.dropout = nn.Dropout(0.1)
        self.downsample = nn.Conv1d(cin, c, 1) if cin != c else None

    def forward(self, x):
        out = self.dropout(F.relu(self.conv1(x)))
        out = self.dropout(F.relu(self.conv2(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class TCN(nn.Module):
    """Temporal convolutional network over [N, 1, L], classifying from the last step."""

    def __init__(self, levels: int = 6):
        super().__init__()
        self.blocks = nn.Sequential(
            *(TCNBlock(1 if i == 0 else 32, 32, 2**i) for i in range(levels))
        )
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.blocks(x)[:, :, -1])


class PreNormLayer(nn.Module):
    """Pre-norm transformer layer: self-attention and an MLP, each in a residual branch."""

    def __init__(self, d: int, heads: int, ff: int, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d), nn.Dropout(0.1))
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        h = self.norm1(x)
        mask = causal_mask(x.shape[1]).to(x.device) if self.causal else None
        h, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + self.dropout(h)
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    """Two pre-norm encoder layers over token ids, mean-pooled, projected to the vocabulary."""

    def __init__(self, vocab: int = 1000, d: int = 128):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        self.register_buffer("pe", sinusoidal_encoding(5000, d), persistent=False)
        self.layers = nn.Sequential(*(PreNormLayer(d, 4, 4 * d) for _ in range(2)))
        self.norm = nn.LayerNorm(d)
        self.fc = nn.Linear(d, vocab)

    def forward(self, tokens):
        x = self.embedding(tokens) + self.pe[: tokens.shape[1]]
        return self.fc(self.norm(self.layers(x)).mean(dim=1))


def double_conv(cin: int, c: int) -> nn.Sequential:
    """(3x3 conv, batch norm, ReLU) twice, keeping the spatial size."""
    return nn.Sequential(
        nn.Conv2d(cin, c, 3, padding=1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(inplace=True),
        nn.Conv2d(c, c, 3, padding=1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(inplace=True),
    )


class Up(nn.Module):
    """U-Net decoder step: 2x transposed conv, concatenate the skip, double conv."""

    def __init__(self, cin: int, c: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, c, 2, stride=2)
        self.conv = double_conv(2 * c, c)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """U-Net with four 2x downsamplings, widths w, 2w, 4w, 8w and a 16w bottleneck."""

    def __init__(self, classes: int = 2, width: int = 32):
        super().__init__()
        w = width
        self.enc1 = double_conv(3, w)
        self.enc2 = double_conv(w, 2 * w)
        self.enc3 = double_conv(2 * w, 4 * w)
        self.enc4 = double_conv(4 * w, 8 * w)
        self.bottleneck = double_conv(8 * w, 16 * w)
        self.up4 = Up(16 * w, 8 * w)
        self.up3 = Up(8 * w, 4 * w)
        self.up2 = Up(4 * w, 2 * w)
        self.up1 = Up(2 * w, w)
        self.head = nn.Conv2d(w, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        e4 = self.enc4(F.max_pool2d(e3, 2))
        b = self.bottleneck(F.max_pool2d(e4, 2))
        d = self.up1(self.up2(self.up3(self.up4(b, e4), e3), e2), e1)
        return self.head(d)


class GRUSeq2Seq(nn.Module):
    """GRU encoder-decoder with multi-head cross-attention and a Luong-style attentional layer."""

    def __init__(self, src_vocab: int = 8000, tgt_vocab: int = 8000, d: int = 256):
        super().__init__()
        self.src_embedding = nn.Embedding(src_vocab, d)
        self.encoder = nn.GRU(
            d, d // 2, num_layers=2, bidirectional=True, dropout=0.1, batch_first=True
        )
        self.tgt_embedding = nn.Embedding(tgt_vocab, d)
        self.decoder = nn.GRU(d, d, num_layers=2, dropout=0.1, batch_first=True)
        self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
        self.combine = nn.Linear(2 * d, d)
        self.out = nn.Linear(d, tgt_vocab)

    def forward(self, src, tgt):
        enc, _ = self.encoder(self.src_embedding(src))
        dec, _ = self.decoder(self.tgt_embedding(tgt))
        ctx, _ = self.attn(dec, enc, enc, need_weights=False)
        return self.out(torch.tanh(self.combine(torch.cat([dec, ctx], dim=-1))))


class CausalDecoder(nn.Module):
    """GPT-style decoder-only language model with pre-norm causal layers."""

    def __init__(self, vocab: int = 8000, d: int = 256, heads: int = 4, n_layers: int = 4):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        self.register_buffer("pe", sinusoidal_encoding(5000, d), persistent=False)
        self.dropout = nn.Dropout(0.1)
        self.layers = nn.Sequential(
            *(PreNormLayer(d, heads, 4 * d, causal=True) for _ in range(n_layers))
        )
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab)

    def forward(self, tokens):
        x = self.dropout(self.embedding(tokens) + self.pe[: tokens.shape[1]])
        return self.lm_head(self.norm(self.layers(x)))


class DigitNet(nn.Sequential):
    """specs/digits.dl: a small CNN for 8x8 digit images."""

    def __init__(self, width: int = 32, classes: int = 10):
        super().__init__(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(2 * width * 16, 128),
            nn.ReLU(),
            nn.Linear(128, classes),
        )


def _images(channels: int, size: int):
    return lambda: (torch.randn(2, channels, size, size),)


def _tokens(vocab: int, length: int):
    return lambda: (torch.randint(0, vocab, (2, length)),)


REFERENCES = {
    "lenet5.dl": (LeNet5, _images(1, 32)),
    "digits.dl": (DigitNet, _images(1, 8)),
    "resnet18.dl": (lambda: ResNet(BasicBlock, (2, 2, 2, 2)), _images(3, 64)),
    "resnet34.dl": (lambda: ResNet(BasicBlock, (3, 4, 6, 3)), _images(3, 64)),
    "resnet50.dl": (lambda: ResNet(Bottleneck, (3, 4, 6, 3)), _images(3, 64)),
    "sentiment_lstm.dl": (SentimentLSTM, _tokens(20000, 12)),
    "tcn.dl": (TCN, lambda: (torch.randn(2, 1, 50),)),
    "tiny_transformer.dl": (TinyTransformer, _tokens(1000, 10)),
    "unet.dl": (UNet, _images(3, 64)),
    "gru_seq2seq.dl": (
        GRUSeq2Seq,
        lambda: (torch.randint(0, 8000, (2, 11)), torch.randint(0, 8000, (2, 7))),
    ),
    "causal_decoder.dl": (CausalDecoder, _tokens(8000, 10)),
}
REFERENCES.update(REFERENCES_V2)  # language v2's model zoo (tests/reference_models_v2.py)


if __name__ == "__main__":
    torch.manual_seed(0)
    for name, (factory, example_inputs) in REFERENCES.items():
        model = factory().eval()
        with torch.no_grad():
            out = model(*example_inputs())
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:22} {params:>12,}  output {list(out.shape)}")
