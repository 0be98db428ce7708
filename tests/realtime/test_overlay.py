import numpy as np
import pytest

from segrt.datasets.camvid import CLASSES, PALETTE
from segrt.realtime.overlay import Overlay, bgr_lut, blend, colorize, render_legend

ROAD, CAR = 3, 8


def test_colorize_uses_the_palette_in_bgr():
    labels = np.array([[ROAD, CAR]], np.uint8)
    colours = colorize(labels, bgr_lut(PALETTE))
    assert tuple(colours[0, 0]) == PALETTE[ROAD][::-1]
    assert tuple(colours[0, 1]) == PALETTE[CAR][::-1]


def test_blend_weights_frame_and_colour():
    frame = np.full((4, 4, 3), 200, np.uint8)
    colour = np.full((4, 4, 3), 100, np.uint8)
    assert (blend(frame, colour, 0.0) == 200).all()
    assert (blend(frame, colour, 1.0) == 100).all()
    assert (blend(frame, colour, 0.5) == 150).all()


def test_label_map_is_upscaled_nearest_to_the_frame_size():
    labels = np.zeros((288, 384), np.uint8)
    labels[:, 192:] = CAR
    big = Overlay(CLASSES, PALETTE).colorize_to(labels, (960, 540))
    assert big.shape == (540, 960, 3)
    found = {tuple(c) for c in big.reshape(-1, 3)}
    assert found == {PALETTE[0][::-1], PALETTE[CAR][::-1]}  # no interpolated colours
    assert tuple(big[270, 10]) == PALETTE[0][::-1] and tuple(big[270, 950]) == PALETTE[CAR][::-1]


def test_compose_blends_draws_legend_and_hud_into_a_reused_buffer(frame):
    ov = Overlay(CLASSES, PALETTE, alpha=0.5)
    colour = ov.colorize_to(np.full((288, 384), ROAD, np.uint8), (960, 540)).copy()
    out1 = ov.compose(frame, colour, ["12.3 FPS"])
    lh, lw = ov.legend.shape[:2]
    assert (out1[-lh:, -lw:] == ov.legend).all()  # legend in the bottom-right corner
    plain = Overlay(CLASSES, PALETTE, alpha=0.5, legend=False, hud=False).compose(frame, colour)
    np.testing.assert_array_equal(plain, blend(frame, colour, 0.5))
    assert (out1[:40, :200] != plain[:40, :200]).any()  # the HUD text changed the top left
    out2 = ov.compose(frame, colour, ["1 FPS"])
    assert out2 is out1  # same buffer each frame


def test_legend_has_one_swatch_per_class():
    legend = render_legend(CLASSES, PALETTE)
    colours = {tuple(c) for c in legend.reshape(-1, 3)}
    assert all(tuple(rgb[::-1]) in colours for rgb in PALETTE)


def test_alpha_outside_unit_range_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        Overlay(CLASSES, PALETTE, alpha=1.5)


def test_hud_is_white_text_inside_its_dark_box_only():
    from segrt.realtime.overlay import draw_hud

    img = np.zeros((200, 400, 3), np.uint8)
    img[:] = (0, 180, 0)  # green: anything the HUD did not paint stays green
    draw_hud(img, ["12.3 FPS  45.6 ms/frame", "infer 7.8 ms"])
    changed = (img != (0, 180, 0)).any(axis=2)
    ys, xs = np.nonzero(changed)
    box = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert (box[..., 0] == box[..., 1]).all() and (box[..., 1] == box[..., 2]).all()  # greys only
    assert box.min() == 24 and box.max() == 255  # dark box, white text
    assert changed[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()  # one solid box
