"""Lesson 12's click widget: the session (embedding once, decoder per click) and the widget's buttons."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcourse.models.promptable import promptable_segmenter
from segcourse.widgets.clicks import ClickSession, cell_colours, click_segmenter


def _image():
    image = np.zeros((16, 16, 3), np.uint8)
    image[4:12, 4:12] = 200
    return image


def test_session_embeds_once_and_decodes_per_click():
    torch.manual_seed(0)
    session = ClickSession(promptable_segmenter(), _image())
    session.click(8, 8)
    assert session.masks.shape == (3, 16, 16) and session.iou_pred.shape == (3,)
    assert session.picked == int(np.argmax(session.iou_pred))
    session.click(1, 1, positive=False)
    assert session.masks.shape == (1, 16, 16)                    # more than one click: the single-mask output
    assert session.encoder_calls == 1 and session.decoder_calls == 2
    session.undo()
    assert session.clicks == [(8, 8, True)] and session.masks.shape == (3, 16, 16)
    session.reset()
    assert not session.mask.any() and session.encoder_calls == 1
    with pytest.raises(ValueError, match="outside"):
        session.click(16, 0)


def test_cell_colours_by_hand():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:2, :2] = 100
    mask = np.zeros((4, 4), bool)
    colours = cell_colours(image, mask, 2)
    assert colours.shape == (2, 2, 3) and colours[0, 0].tolist() == [100, 100, 100] and colours[1, 1].tolist() == [0, 0, 0]
    mask[2:, 2:] = True                                            # green blended into a black block: 0.55 * (40, 200, 80)
    assert cell_colours(image, mask, 2)[1, 1].tolist() == [22, 110, 44]


def test_a_click_on_a_button_changes_the_mask_and_the_picture():
    torch.manual_seed(0)
    box = click_segmenter(promptable_segmenter(), _image())
    before = box.picture.value
    assert len(box.grid.children) == 16
    box.grid.children[5]._click_handlers(box.grid.children[5])     # the button at cell (1, 1): pixel (6, 6)
    assert box.session.clicks == [(6, 6, True)] and box.picture.value != before
    assert box.grid.children[5].description == "+"
    box.mode.value = False
    box.grid.children[0]._click_handlers(box.grid.children[0])
    assert box.session.clicks[-1] == (2, 2, False) and "decoder calls" in box.summary.value
