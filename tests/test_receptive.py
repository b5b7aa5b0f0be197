import numpy as np
import pytest

from pixelcnn.errors import ConfigError
from pixelcnn.models import PRESETS
from pixelcnn.explain.receptive import analytic_field, gradient_field
from pixelcnn.models import random_model

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
        derived = analytic_field(config, row, col, channel=channel)
        assert measured.shape == (28, 28)
        assert np.array_equal(measured > 0, derived), (preset, row, col, channel)
        sees_own_pixel = config.kind == "rgb" and channel > 0
        forbidden = later_or_same(row, col)
        forbidden[row, col] = not sees_own_pixel
        assert not derived[forbidden].any() and derived[row, col] == sees_own_pixel


def test_gated_field_has_no_blind_spot():
    """Gated PixelCNN reaches every earlier pixel inside its window: the paper model's blind spot is filled."""
    gated, paper = analytic_field(PRESETS["gated"], 14, 14), analytic_field(PRESETS["paper"], 14, 14)
    assert (paper & ~gated).sum() == 0 and (gated & ~paper).sum() > 0
    assert gated[:14].all() and gated[14, :14].all() and not gated[14, 14:].any() and not gated[15:].any()


def test_paper_field_shows_the_blind_spot():
    field = analytic_field(PRESETS["paper"], 14, 14)
    assert field[13, :14].all() and field[14, :14].all()  # the row above and the pixels to the left
    # Rows above reach 3 columns right through the 7x7 layer and one more per block above
    # that: row 14 - j ends at column 16 + j. The wedge beyond is the blind spot.
    for j in range(1, 15):
        last = min(16 + j, 27)
        assert field[14 - j, :last + 1].all() and not field[14 - j, last + 1:].any(), j
    assert not field[15:].any() and not field[14, 14:].any()


@pytest.mark.parametrize("preset", ["paper", "rgb", "gated"])
def test_depth_limited_field_grows(preset):
    fields = [analytic_field(PRESETS[preset], 14, 14, n_blocks=k) for k in range(13)]
    for shallow, deep in zip(fields, fields[1:]):
        assert (shallow & ~deep).sum() == 0  # each layer keeps what the shallower net saw
    assert fields[0].sum() < fields[1].sum() < fields[6].sum() < fields[12].sum()


@pytest.mark.parametrize("row, col, channel", [(28, 0, 0), (0, -1, 0), (3, 3, 3), (1.5, 2, 0)])
def test_out_of_range_targets(row, col, channel):
    model = random_model(PRESETS["tiny"])
    with pytest.raises(ConfigError):
        gradient_field(model, np.zeros((28, 28, 3), np.uint8), row, col, channel)


def test_the_target_is_outlined_so_its_own_cell_stays_visible():
    """Lecture finding: the red cross covered the target pixel, where rgb's dependence on its own earlier
    colours shows."""
    from pixelcnn.figures import field_figure

    field = np.zeros((28, 28))
    field[14, 14] = 1.0
    target = next(t for t in field_figure(field, 14, 14).data if t.name == "target")
    assert target.mode == "lines" and min(target.x) == 13.5 and max(target.x) == 14.5
    assert min(target.y) == 13.5 and max(target.y) == 14.5


@pytest.mark.parametrize("log", [False, True])
def test_the_legend_sits_above_the_map_clear_of_the_column_axis_title(log):
    """Lecture finding: with the log scale off, the column axis's title ran into the legend under the map."""
    from pixelcnn.figures import field_figure

    field = np.random.default_rng(0).random((28, 28))
    figure = field_figure(field, 14, 14, log=log, analytic=field > 0.5)
    legend = figure.layout.legend
    assert legend.yanchor == "bottom" and legend.y >= 1  # above the plotting area, in the top margin
    assert figure.layout.xaxis.title.text == "column" and figure.layout.xaxis.side in (None, "bottom")
    assert figure.layout.margin.t >= 40
