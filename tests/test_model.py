import math

import pytest
import torch
import torch.nn.functional as F

from pixelcnn.errors import ConfigError
from pixelcnn.models import PRESETS, PixelCNN, PixelCNNConfig, bits_per_dim, build_model, count_parameters
from pixelcnn.models.reference import reference_from

TARGETS = [(0, 0), (0, 27), (14, 14), (27, 27), (27, 0), (3, 25)]


def raster_later_or_same(r: int, c: int, size: int = 28) -> torch.Tensor:
    index = torch.arange(size * size).view(size, size)
    return index >= r * size + c


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_autoregressive_property(preset):
    """d logits(r, c, ch) / d input is exactly zero at every later pixel and nonzero before; at (r, c)
    itself it is zero, except that an rgb model's channel ch sees exactly the channels before it."""
    torch.manual_seed(0)
    config = PRESETS[preset]
    model = build_model(config).double().eval()
    x = torch.randint(0, 4, (1, 3, 28, 28)).double().requires_grad_(True)
    logits = model(x)
    for r, c in TARGETS:
        for ch in range(3):
            (grad,) = torch.autograd.grad(logits[0, :, ch, r, c].sum(), x, retain_graph=True)
            field = grad[0].abs().amax(dim=0)
            later = raster_later_or_same(r, c)
            later[r, c] = False
            assert field[later].eq(0).all(), (preset, r, c, ch)
            own = grad[0, :, r, c].abs()
            sees_own = own > 0
            expected = torch.arange(3) < ch if config.kind == "rgb" else torch.zeros(3, dtype=torch.bool)
            assert torch.equal(sees_own, expected), (preset, r, c, ch, own)
            if (r, c) != (0, 0):
                assert field[~raster_later_or_same(r, c)].gt(0).any(), (preset, r, c, ch)


def test_output_shape_and_dtypes():
    model = PixelCNN(PRESETS["tiny"])
    x = torch.randint(0, 4, (2, 3, 28, 28))
    logits = model(x)
    assert logits.shape == (2, 4, 3, 28, 28)
    assert torch.allclose(model(x.float()), logits)
    assert F.cross_entropy(logits, x).ndim == 0


def test_uniform_model_scores_exactly_two_bits():
    x = torch.randint(0, 4, (5, 3, 28, 28))
    logits = torch.zeros(5, 4, 3, 28, 28)
    assert bits_per_dim(logits, x).item() == pytest.approx(2.0, abs=1e-6)
    confident = F.one_hot(x, 4).permute(0, 4, 1, 2, 3).float() * 50
    assert bits_per_dim(confident, x).item() < 1e-6


@pytest.mark.parametrize("preset", sorted(p for p in PRESETS if PRESETS[p].kind == "pixelcnn"))
def test_matches_dense_reference(preset):
    torch.manual_seed(1)
    model = PixelCNN(PRESETS[preset]).eval()
    x = torch.randint(0, 4, (3, 3, 28, 28))
    with torch.no_grad():
        assert torch.allclose(model(x), reference_from(model)(x), atol=1e-5)


def test_paper_preset_is_table_one():
    config = PRESETS["paper"]
    assert (config.hidden, config.n_blocks, config.first_kernel, config.block_kernel) == (128, 12, 7, 3)
    model = PixelCNN(config)
    assert model.input_conv.mask_type == "A"
    assert all(block.masked.mask_type == "B" for block in model.blocks)
    live_first = 3 * 7 + 3
    expected = (live_first * 3 * 128 + 128
                + 12 * (128 * 64 + 64 + 5 * 64 * 64 + 64 + 64 * 128 + 128)
                + 128 * 128 + 128 + 128 * 12 + 12)
    assert count_parameters(model) == expected


def test_variants_have_a_parameter_count_comparable_to_paper():
    paper = count_parameters(build_model(PRESETS["paper"]))
    for name in ("rgb", "gated"):
        assert abs(count_parameters(build_model(PRESETS[name])) / paper - 1) < 0.05, name


def test_rgb_masks_group_the_colours():
    model = build_model(PRESETS["rgb"])
    centre = model.input_conv.mask[:, :, -1, model.config.first_kernel // 2]  # (out, in)
    thirds = model.config.hidden // 3
    assert centre[:thirds].sum() == 0  # R features see no colour of the current pixel
    assert centre[thirds:2 * thirds, 0].all() and centre[thirds:2 * thirds, 1:].sum() == 0
    assert centre[2 * thirds:, :2].all() and centre[2 * thirds:, 2].sum() == 0


def test_architecture_table_sums_to_the_parameter_count():
    from pixelcnn.models import architecture_table

    for config in PRESETS.values():
        rows = architecture_table(config)
        assert sum(row["parameters"] for row in rows) == count_parameters(build_model(config))


@pytest.mark.parametrize("bad", [{"kind": "transformer"}, {"kind": "rgb", "hidden": 4}, {"hidden": 0}, {"hidden": 33}, {"n_blocks": -1}, {"first_kernel": 4},
                                 {"levels": 1}, {"hidden": 2.5}, {"hidden": True}])
def test_config_rejects_nonsense(bad):
    with pytest.raises(ConfigError):
        PixelCNNConfig(**bad)


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown"):
        PixelCNNConfig.from_dict({"hidden": 64, "layers": 3})
    assert PixelCNNConfig.from_dict(PRESETS["lecture"].to_dict()) == PRESETS["lecture"]
    assert math.isclose(PixelCNNConfig().hidden, 128)
