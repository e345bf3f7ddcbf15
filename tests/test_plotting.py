"""The labelled grid TensorBoard and the run report draw: its layout and its titles."""

import numpy as np
from matplotlib import font_manager
from PIL import ImageFont

from kerascnn import plotting

TILE = round(1.6 * plotting.DPI)


def test_a_labelled_grid_is_columns_of_tiles_under_their_titles():
    images = [np.zeros((32, 32, 3), "uint8")] * 6
    one_line = plotting.labelled_grid(images, ["seven"] * 6)
    two_lines = plotting.labelled_grid(images, ["seven\n-> one (0.93)"] * 6)
    assert one_line.shape[1] == two_lines.shape[1] == 4 * TILE
    rows = 2
    # A second title line adds one line's height to every row.
    font = ImageFont.truetype(
        font_manager.findfont("DejaVu Sans"), round(plotting.TEXT_POINTS * plotting.DPI / 72)
    )
    line = sum(font.getmetrics())
    assert two_lines.shape[0] - one_line.shape[0] == rows * line
    # The image is scaled into its tile: black pixels there, white around.
    assert (one_line[one_line.shape[0] // 2 + TILE // 4, TILE // 2] == 0).all()


def test_a_title_wider_than_its_tile_is_cut_with_an_ellipsis():
    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 17)
    long = "German shepherd, German shepherd dog, German police dog, alsatian"
    cut = plotting.fitted(long, font, TILE - 4)
    assert cut.endswith("…") and long.startswith(cut[:-1])
    assert font.getlength(cut) <= TILE - 4 < font.getlength(cut[:-1] + long[len(cut) - 1] + "…")
    assert plotting.fitted("cat", font, TILE - 4) == "cat"
