import numpy as np

from core.analysis.imaging import sprite_sheet


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
