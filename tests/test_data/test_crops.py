"""Crop rules of asearch.data.crops (one per tracker family), against hand-computed sides."""
import math

import pytest

from asearch.data.crops import AreaFactorCrop, ContextCrop, ContextFactorCrop, CropRule, context_side


def test_rules_on_a_4_to_1_box_hand_computed():
    """w = 200, h = 50 (sqrt(w·h) = 100, w + h = 250).

    * area factor (OSTrack): ceil(100·2) = 200, ceil(100·4) = 400;
    * context factor (TransT): p = (2 - 1)·250/2 = 125 -> ceil(sqrt(325·175)) = ceil(238.48) = 239;
      p = (4 - 1)·250/2 = 375 -> ceil(sqrt(575·425)) = ceil(494.34) = 495;
    * SiamFC context 0.5 (SiamCAR): p = 125 -> sqrt(325·175) = 238.4848; search 238.4848·255/127 = 478.8474.
    """
    area = AreaFactorCrop(template_factor=2.0, search_factor=4.0)
    assert area.template_side(200, 50) == 200.0 and area.search_side(200, 50) == 400.0
    ctx_factor = ContextFactorCrop(template_factor=2.0, search_factor=4.0)
    assert ctx_factor.template_side(200, 50) == 239.0 and ctx_factor.search_side(200, 50) == 495.0
    siamfc = ContextCrop(context=0.5, template_size=127, search_size=255)
    assert siamfc.template_side(200, 50) == pytest.approx(238.4848, abs=1e-4)
    assert siamfc.search_side(200, 50) == pytest.approx(478.8474, abs=1e-4)
    assert siamfc.search_side(200, 50) / siamfc.template_side(200, 50) == pytest.approx(255 / 127)


def test_issue_example_and_square_boxes():
    """The issue's 4:1 box w = 100, h = 25: SiamFC context 0.5 gives sqrt(162.5·87.5) = 119.24, the area rule
    ceil(50·2) = 100. For a square box w = h = 40 every factor rule gives 2·40 = 80 and 4·40 = 160."""
    assert ContextCrop(0.5, 128, 256).template_side(100, 25) == pytest.approx(119.2424, abs=1e-4)
    assert AreaFactorCrop().template_side(100, 25) == 100.0
    for rule in (AreaFactorCrop(), ContextFactorCrop()):
        assert (rule.template_side(40, 40), rule.search_side(40, 40)) == (80.0, 160.0)
    assert ContextCrop(0.5, 128, 256).search_side(40, 40) == pytest.approx(160.0)


def test_ceiling_and_other_factors():
    """w = h = 10.3: 10.3·2 = 20.6 -> 21 (area and context factor alike); factor 3 on w = 30, h = 10:
    area ceil(sqrt(300)·3) = ceil(51.96) = 52, context p = 40 -> ceil(sqrt(70·50)) = ceil(59.16) = 60."""
    assert AreaFactorCrop().template_side(10.3, 10.3) == 21.0
    assert ContextFactorCrop().template_side(10.3, 10.3) == 21.0
    assert AreaFactorCrop(search_factor=3.0).search_side(30, 10) == 52.0
    assert ContextFactorCrop(search_factor=3.0).search_side(30, 10) == 60.0
    # the context-factor rule is the ceiling of SiamFC's context side with context (f - 1) / 2
    assert ContextFactorCrop().search_side(37.0, 11.0) == math.ceil(context_side(37.0, 11.0, 1.5))


def test_crop_rule_is_abstract():
    with pytest.raises(TypeError):
        CropRule()
    assert isinstance(ContextCrop(), CropRule) and ContextCrop() == ContextCrop(0.5, 127, 255)
