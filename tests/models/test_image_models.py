"""The image presets of SPEC §5: shapes at batch 2, the shape checks, and the exact code
re-standardisation (train.restandardise_codes) on convolutional models."""

import pytest
import torch

from latentdim.errors import LatentdimError
from latentdim.models import PRESETS, ModelSpec, build_model, is_image_preset
from latentdim.models.conv import AddCoords, conv_levels
from latentdim.training import restandardise_codes

# (preset, image shape (C, H, W)): each preset at its own resolution, conv at several.
CASES = [
    ("mnist", (1, 28, 28)),
    ("fmnist", (1, 28, 28)),
    ("cifar", (3, 32, 32)),
    ("celeba", (3, 64, 64)),
    ("conv", (1, 8, 8)),
    ("conv", (3, 20, 20)),
    ("conv", (3, 48, 48)),
    ("conv", (1, 128, 128)),
]


@pytest.mark.parametrize(("preset", "shape"), CASES)
def test_encoder_and_decoder_shapes_at_batch_2(preset, shape):
    torch.manual_seed(0)
    model = build_model(ModelSpec(preset, shape, capacity=5, width=32)).eval()
    x = torch.rand(2, *shape)
    codes = model.encoder(x)
    assert codes.shape == (2, 5)
    assert model.decoder(codes).shape == (2, *shape)
    assert model.critic(codes).shape == (2, 1)


def test_add_coords_appends_row_and_column_in_minus_one_to_one():
    x = torch.arange(3 * 2 * 4 * 4, dtype=torch.float64).reshape(3, 2, 4, 4)
    out = AddCoords(4)(x)
    assert out.shape == (3, 4, 4, 4) and out.dtype == torch.float64
    assert torch.equal(out[:, :2], x)
    steps = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0], dtype=torch.float64)
    assert torch.allclose(out[:, 2], steps[None, :, None].expand(3, 4, 4))  # row index, down
    assert torch.allclose(out[:, 3], steps[None, None, :].expand(3, 4, 4))  # column index, across
    assert AddCoords(4).state_dict() == {}  # rebuilt from the size, never in a checkpoint


@pytest.mark.parametrize(("preset", "shape"), [c for c in CASES if c[0] != "mnist"])
def test_convolutional_decoders_see_coordinates_at_every_upsampling(preset, shape):
    decoder = build_model(ModelSpec(preset, shape, capacity=5, width=32)).decoder
    convs = [m for m in decoder if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Conv2d))]
    coords = [i for i, m in enumerate(decoder) if isinstance(m, AddCoords)]
    assert len(coords) == len(convs) >= 2  # each stage's (transposed) convolution, and the last one
    for i in coords:
        assert isinstance(decoder[i + 1], (torch.nn.ConvTranspose2d, torch.nn.Conv2d))


@pytest.mark.parametrize(("preset", "shape"), [c for c in CASES if c[0] != "conv"])
def test_full_width_presets_build(preset, shape):
    model = build_model(ModelSpec(preset, shape, capacity=3)).eval()
    with torch.no_grad():
        assert model.decoder(model.encoder(torch.rand(2, *shape))).shape == (2, *shape)


def test_fmnist_preset_layers_follow_spec():
    # SPEC §5: CONV64 k4 s2, CONV128 k4 s2, FC1024, FC m / FC1024, FC 7x7x128, TCONV128 x2, CONV1 k3.
    model = build_model(ModelSpec("fmnist", (1, 28, 28), capacity=7))
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(64, (4, 4), (2, 2)), (128, (4, 4), (2, 2))]
    linears = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(7, 1024), (1024, 7 * 7 * 128)]
    tconvs = [m for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [t.out_channels for t in tconvs] == [128, 128]
    last = list(model.decoder.modules())[-1]
    assert isinstance(last, torch.nn.Conv2d) and last.kernel_size == (3, 3) and last.out_channels == 1


@pytest.mark.parametrize(
    ("preset", "shape", "message"),
    [
        ("fmnist", (1, 32, 32), "needs 28x28 images"),
        ("cifar", (3, 28, 28), "needs 32x32 images"),
        ("celeba", (3, 64, 32), "square"),
        ("mnist", (2, 28, 28), "1 or 3 channels"),
        ("conv", (1, 7, 7), "preset 'conv' needs"),
        ("fmnist", (784,), "needs images"),
        ("mlp", (1, 28, 28), "needs vectors"),
    ],
)
def test_preset_refuses_shapes_it_cannot_take(preset, shape, message):
    with pytest.raises(LatentdimError, match=message) as info:
        build_model(ModelSpec(preset, shape, capacity=4, width=8))
    assert "\n" not in str(info.value)


def test_conv_levels():
    assert [conv_levels(s) for s in (7, 8, 12, 28, 32, 48, 64, 100, 128)] == [0, 1, 1, 2, 3, 3, 4, 2, 5]


def test_preset_names():
    assert set(PRESETS) == {"mlp", "mnist", "fmnist", "cifar", "celeba", "conv"}
    assert not is_image_preset("mlp") and all(is_image_preset(p) for p in PRESETS if p != "mlp")


@pytest.mark.parametrize(("preset", "shape"), CASES[:5])
def test_restandardise_codes_keeps_reconstructions_on_image_presets(preset, shape):
    # The compensation is exact: rescaling a code and the decoder's first column cancel, so the
    # masked reconstruction is unchanged while the active codes get zero mean and unit variance.
    torch.manual_seed(1)
    model = build_model(ModelSpec(preset, shape, capacity=4, width=16)).eval()
    with torch.no_grad():
        model.mask.theta.copy_(torch.tensor([3.0, 2.0, 0.01, 1.0]))  # mu: 0.95, 0.86, 0.01 (closed), 0.63
        x = torch.rand(64, *shape)
        mu = model.mask()
        before = model.decoder(mu * model.encoder(x))
        restandardise_codes(model, x)
        codes = model.encoder(x)
        after = model.decoder(mu * codes)
    torch.testing.assert_close(after, before, atol=2e-4, rtol=1e-4)
    active = [0, 1, 3]
    torch.testing.assert_close(codes[:, active].mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(codes[:, active].std(0), torch.ones(3), atol=1e-4, rtol=0)
