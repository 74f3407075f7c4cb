"""The image presets of SPEC §5: ``mnist``, ``fmnist``, ``cifar``, ``celeba`` and the scalable ``conv``.

Every encoder maps (batch, C, H, W) images in [0, 1] to (batch, m) and ends with a linear layer
of size m; every decoder maps (batch, m) to (batch, C, H, W) *logits* and starts with a linear
layer of size m (the sigmoid of SPEC §5 lives in the BCE loss and is applied at generation).
The critic works on latent codes, so it is an MLP in every preset.

``width`` (tests only) divides nothing: it replaces the widest layer size so tiny models build
fast; channel counts scale with it proportionally.

latentdim departs from SPEC §5 in one place: each transposed convolution of a decoder, and its
last convolution, also sees two coordinate channels (:class:`AddCoords`, the CoordConv of Liu et
al. 2018). Without them a decoder spent an extra code on rendering positions: a 28 x 28 spot at
(x, y) took 3 codes through ``fmnist`` and a 64 x 64 one 3 through ``conv``, 2 with them
(docs/log/mask-dynamics.md, "Coordinate channels in the convolutional decoders").
"""

from __future__ import annotations

import torch
from torch import nn


def _scaled(channels: int, width: int | None, base: int) -> int:
    """A channel count scaled by width/base (at least 1); the preset's own value when width is None."""
    return channels if width is None else max(1, channels * width // base)


class Residual(nn.Module):
    """RES w: x + (CONV w k3 s1 - BN - ReLU - CONV w k3 s1 - BN)(x), then ReLU (SPEC §5's RES blocks)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
        )
        self.act = nn.ReLU()

    def forward(self, x):  # noqa: ANN001, ANN201 - tensor in, tensor out
        return self.act(x + self.body(x))


class FCResidual(nn.Module):
    """FC-RES w: x + (FC w - BN - ReLU - FC w - BN)(x), then ReLU (the celeba encoder's FC-RES512)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, width), nn.BatchNorm1d(width)
        )
        self.act = nn.ReLU()

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.act(x + self.body(x))


class AddCoords(nn.Module):
    """Appends two channels to (batch, C, size, size) maps: each pixel's row and column in [-1, 1].

    A (transposed) convolution applies one kernel at every position, so on its own it cannot
    tell where in the image it is; these channels let it place what the code describes.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        axis = torch.linspace(-1.0, 1.0, size)
        rows, cols = torch.meshgrid(axis, axis, indexing="ij")
        # Rebuilt from the size, never saved; shaped (1, 1, size, size).
        self.register_buffer("rows", rows[None, None], persistent=False)
        self.register_buffer("cols", cols[None, None], persistent=False)

    def forward(self, x):  # noqa: ANN001, ANN201
        # expand_as keeps the batch size symbolic in the ONNX export (expand(x.shape[0]) froze it).
        one = x[:, :1]
        return torch.cat([x, self.rows.to(x.dtype).expand_as(one), self.cols.to(x.dtype).expand_as(one)], 1)


def _up_at(cin: int, cout: int, size: int) -> list[nn.Module]:
    """Coordinates at ``size``, then TCONV cout k4 s2 - BN - ReLU: doubles the resolution."""
    return [AddCoords(size), nn.ConvTranspose2d(cin + 2, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _to_pixels(cin: int, channels: int, size: int) -> list[nn.Module]:
    """Coordinates, then the decoder's last CONV k3 s1 to ``channels`` logits."""
    return [AddCoords(size), nn.Conv2d(cin + 2, channels, 3, 1, 1)]


def _down(cin: int, cout: int) -> list[nn.Module]:
    """CONV cout k4 s2 - BN - ReLU: halves the resolution."""
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _fc_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU()]


def _to_image(channels: int, size: int) -> nn.Module:
    return nn.Unflatten(1, (channels, size, size))


def critic(capacity: int, width: int = 1024, depth: int = 1) -> nn.Module:
    """H: depth x (FC width - ReLU) - FC 1.  (batch, m) -> (batch, 1)."""
    layers: list[nn.Module] = []
    cin = capacity
    for _ in range(depth):
        layers += [nn.Linear(cin, width), nn.ReLU()]
        cin = width
    return nn.Sequential(*layers, nn.Linear(cin, 1))


def mnist(shape: tuple[int, int, int], m: int, width: int | None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """``mnist`` (reference code): 4 x (FC1024-ReLU) in encoder, decoder and critic."""
    c, h, w = shape
    d, hidden = c * h * w, width or 1024
    enc: list[nn.Module] = [nn.Flatten()]
    dec: list[nn.Module] = [nn.Linear(m, hidden), nn.ReLU()]
    cin = d
    for _ in range(4):
        enc += [nn.Linear(cin, hidden), nn.ReLU()]
        cin = hidden
    for _ in range(3):
        dec += [nn.Linear(hidden, hidden), nn.ReLU()]
    enc.append(nn.Linear(hidden, m))
    dec += [nn.Linear(hidden, d), nn.Unflatten(1, (c, h, w))]
    return nn.Sequential(*enc), nn.Sequential(*dec), critic(m, hidden, depth=4)


def fmnist(shape: tuple[int, int, int], m: int, width: int | None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """``fmnist``: two k4 s2 convolutions down to 7x7, FC 1024; the decoder mirrors it."""
    c, h, _ = shape
    s = h // 4
    c1, c2, fc = _scaled(64, width, 1024), _scaled(128, width, 1024), width or 1024
    enc = nn.Sequential(*_down(c, c1), *_down(c1, c2), nn.Flatten(), *_fc_bn(c2 * s * s, fc), nn.Linear(fc, m))
    dec = nn.Sequential(
        nn.Linear(m, fc), nn.BatchNorm1d(fc), nn.ReLU(), *_fc_bn(fc, c2 * s * s), _to_image(c2, s),
        *_up_at(c2, c2, s), *_up_at(c2, c2, 2 * s), *_to_pixels(c2, c, h),
    )
    return enc, dec, critic(m, width or 1000)


def cifar(shape: tuple[int, int, int], m: int, width: int | None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """``cifar``: three k4 s2 convolutions (128, 128, 256) to 4x4, FC 1024; decoder from 2x2x512
    through four (TCONV 256, RES 256) stages to 32x32."""
    c, h, _ = shape
    c1, c2, c3 = _scaled(128, width, 1024), _scaled(128, width, 1024), _scaled(256, width, 1024)
    fc, start = width or 1024, _scaled(512, width, 1024)
    s_enc, s_dec = h // 8, h // 16
    enc = nn.Sequential(
        *_down(c, c1), *_down(c1, c2), *_down(c2, c3), nn.Flatten(), *_fc_bn(c3 * s_enc * s_enc, fc), nn.Linear(fc, m)
    )
    dec_layers: list[nn.Module] = [nn.Linear(m, start * s_dec * s_dec), nn.BatchNorm1d(start * s_dec * s_dec), nn.ReLU()]
    dec_layers.append(_to_image(start, s_dec))
    cin, size = start, s_dec
    for _ in range(4):
        dec_layers += [*_up_at(cin, c3, size), Residual(c3)]
        cin, size = c3, 2 * size
    dec_layers += _to_pixels(cin, c, size)
    return enc, nn.Sequential(*dec_layers), critic(m, width or 1024)


def celeba(shape: tuple[int, int, int], m: int, width: int | None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """``celeba``: CONV16 k3 then (RES, CONV k4 s2) stages to 8x8x64, FC-RES 512; decoder from 2x2x16
    through five (TCONV w, RES w) stages, w = 32 ... 512, to 64x64."""
    c, h, _ = shape
    k = lambda ch: _scaled(ch, width, 1024)  # noqa: E731 - local shorthand
    fc = _scaled(512, width, 1024)
    enc_layers: list[nn.Module] = [nn.Conv2d(c, k(16), 3, 1, 1, bias=False), nn.BatchNorm2d(k(16)), nn.ReLU(), Residual(k(16))]
    cin = k(16)
    for cout in (32, 64, 64):
        enc_layers += [*_down(cin, k(cout)), Residual(k(cout))]
        cin = k(cout)
    s_enc = h // 8
    enc_layers += [nn.Flatten(), *_fc_bn(cin * s_enc * s_enc, fc), FCResidual(fc), nn.Linear(fc, m)]
    s_dec = h // 32
    dec_layers: list[nn.Module] = [nn.Linear(m, k(16) * s_dec * s_dec), nn.BatchNorm1d(k(16) * s_dec * s_dec), nn.ReLU()]
    dec_layers.append(_to_image(k(16), s_dec))
    cin, size = k(16), s_dec
    for cout in (32, 64, 128, 256, 512):
        dec_layers += [*_up_at(cin, k(cout), size), Residual(k(cout))]
        cin, size = k(cout), 2 * size
    dec_layers += _to_pixels(cin, c, size)
    return nn.Sequential(*enc_layers), nn.Sequential(*dec_layers), critic(m, width or 1024)


def conv_levels(size: int) -> int:
    """Number of k4 s2 stages of the ``conv`` preset: halve while the result stays an integer >= 4."""
    levels = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        levels += 1
    return levels


def conv(shape: tuple[int, int, int], m: int, width: int | None) -> tuple[nn.Module, nn.Module, nn.Module]:
    """``conv``: the ``fmnist`` design scaled to any square size with at least one halving.

    Encoder: L stages of CONV k4 s2-BN-ReLU with 32, 64, 128, 256, 256, ... channels down to
    size / 2^L (between 4 and 7 for sizes that are a power of two times 4..7), FC 1024-BN-ReLU,
    FC m. Decoder: FC 1024-BN-ReLU, FC to the smallest map, L TCONV k4 s2 stages back, CONV k3 s1.
    """
    c, h, _ = shape
    levels = conv_levels(h)
    chans = [_scaled(min(256, 32 * 2**i), width, 1024) for i in range(levels)]
    s, fc = h // 2**levels, width or 1024
    enc_layers: list[nn.Module] = []
    cin = c
    for cout in chans:
        enc_layers += _down(cin, cout)
        cin = cout
    enc_layers += [nn.Flatten(), *_fc_bn(cin * s * s, fc), nn.Linear(fc, m)]
    dec_layers: list[nn.Module] = [nn.Linear(m, fc), nn.BatchNorm1d(fc), nn.ReLU(), *_fc_bn(fc, cin * s * s), _to_image(cin, s)]
    size = s
    for cout in [*reversed(chans[:-1]), chans[0]]:
        dec_layers += _up_at(cin, cout, size)
        cin, size = cout, 2 * size
    dec_layers += _to_pixels(cin, c, size)
    return nn.Sequential(*enc_layers), nn.Sequential(*dec_layers), critic(m, width or 1024)


#: preset -> (builder, the one image shape it is defined for, or None for ``conv``).
IMAGE_PRESETS = {
    "mnist": (mnist, (1, 28, 28)),
    "fmnist": (fmnist, (1, 28, 28)),
    "cifar": (cifar, (3, 32, 32)),
    "celeba": (celeba, (3, 64, 64)),
    "conv": (conv, None),
}


def check_image_shape(preset: str, shape: tuple[int, ...]) -> str | None:
    """Why ``preset`` cannot take samples of ``shape``, or None when it can."""
    if len(shape) != 3:
        return f"preset '{preset}' needs images (C, H, W), got samples of shape {shape}"
    c, h, w = shape
    if c not in (1, 3):
        return f"preset '{preset}' needs 1 or 3 channels, got {c}"
    if h != w:
        return f"preset '{preset}' needs square images, got {h}x{w}"
    fixed = IMAGE_PRESETS[preset][1]
    if fixed is not None:
        if (h, w) != fixed[1:]:
            return f"preset '{preset}' needs {fixed[1]}x{fixed[2]} images, got {h}x{w}; use --image-size {fixed[1]} or --preset conv"
        return None
    if conv_levels(h) < 1 or h > 512:
        return f"preset 'conv' needs a square size between 8 and 512 that halves at least once, got {h}; use --image-size 64"
    return None
