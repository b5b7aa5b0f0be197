import numpy as np
import pytest

from pixelcnn.errors import ConfigError
from pixelcnn.model import PRESETS
from pixelcnn.receptive import analytic_field, gradient_field, random_model

TARGETS = [(14, 14, 0), (0, 0, 0), (0, 27, 1), (27, 0, 2), (27, 27, 0), (14, 14, 2)]


def later_or_same(r: int, c: int) -> np.ndarray:
    return (np.arange(28 * 28) >= r * 28 + c).reshape(28, 28)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_gradient_field_matches_the_analytic_field(preset, small_data):
    config = PRESETS[preset]
    model = random_model(config, seed=0)
    images = small_data["test"][:2]
    for row, col, channel in TARGETS:
        measured = gradient_field(model, images, row, col, channel)
        derived = analytic_field(config, row, col)
        assert measured.shape == (28, 28)
        assert np.array_equal(measured > 0, derived), (preset, row, col, channel)
        assert not derived[later_or_same(row, col)].any()
        assert not measured[later_or_same(row, col)].any()


def test_paper_field_shows_the_blind_spot():
    field = analytic_field(PRESETS["paper"], 14, 14)
    assert field[13, :14].all() and field[14, :14].all()  # the row above and the pixels to the left
    # Rows above reach 3 columns right through the 7x7 layer and one more per block above
    # that: row 14 - j ends at column 16 + j. The wedge beyond is the blind spot.
    for j in range(1, 15):
        last = min(16 + j, 27)
        assert field[14 - j, :last + 1].all() and not field[14 - j, last + 1:].any(), j
    assert not field[15:].any() and not field[14, 14:].any()


def test_depth_limited_field_grows():
    sizes = [analytic_field(PRESETS["paper"], 14, 14, n_blocks=k).sum() for k in range(13)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


@pytest.mark.parametrize("row, col, channel", [(28, 0, 0), (0, -1, 0), (3, 3, 3), (1.5, 2, 0)])
def test_out_of_range_targets(row, col, channel):
    model = random_model(PRESETS["tiny"])
    with pytest.raises(ConfigError):
        gradient_field(model, np.zeros((28, 28, 3), np.uint8), row, col, channel)
