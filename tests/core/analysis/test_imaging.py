import numpy as np

from core.analysis.imaging import fit, letterbox, sprite_sheet


def test_sprite_sheet_puts_tile_i_at_row_i_div_columns_and_keeps_aspect():
    colours = [(i * 20, 255 - i * 20, 7 * i) for i in range(10)]
    images = [np.full((30, 60, 3), c, np.uint8) for c in colours]  # 2:1, fitted into 16-px tiles as 16×8
    sheet, columns = sprite_sheet(images, side=16, background=0)
    assert columns == 4 and sheet.shape == (3 * 16, 4 * 16, 3)
    for i, colour in enumerate(colours):
        top, left = (i // columns) * 16, (i % columns) * 16
        tile = sheet[top : top + 16, left : left + 16]
        assert (tile[8, 8] == colour).all(), i  # the centre holds the image's colour
        assert (tile[0, 8] == 0).all() and (tile[15, 8] == 0).all(), i  # letterboxed: 16×8 centred vertically
        assert (tile[4:12, :] == colour).all(), i
    assert (sheet[2 * 16 :, 2 * 16 :] == 0).all()  # tiles 10 and 11 are empty


def test_sprite_sheet_of_one_image():
    sheet, columns = sprite_sheet([np.zeros((5, 5, 3), np.uint8)], side=8)
    assert columns == 1 and sheet.shape == (8, 8, 3)


def test_fit_shrinks_to_the_box_keeping_aspect_and_never_enlarges():
    wide = np.zeros((30, 120, 3), np.uint8)
    assert fit(wide, 40).shape == (10, 40, 3)
    assert fit(np.zeros((5, 3, 3), np.uint8), 40).shape == (5, 3, 3)  # smaller than the box: as it is


def test_letterbox_enlarges_a_tiny_image_by_a_whole_factor_then_fits_it_centred():
    dot = np.array([[[255, 0, 0]]], np.uint8)  # 1×1 red → a flat 16×16 red square in the middle of a 20 tile
    tile = letterbox(np.repeat(np.repeat(dot, 2, 0), 1, 1), 20, background=0)  # 2×1 → ×10 → 20×10
    assert tile.shape == (20, 20, 3)
    assert (tile[:, 5:15] == (255, 0, 0)).all() and (tile[:, :5] == 0).all() and (tile[:, 15:] == 0).all()
    strip = letterbox(np.full((4000, 1, 3), 9, np.uint8), 50, background=0)
    assert (strip[:, 24] == 9).all() and not strip[:, :24].any() and not strip[:, 25:].any()  # a 1-px line
