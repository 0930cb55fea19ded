from __future__ import annotations

import pytest

from glnet_geo.classes import DEEPGLOBE, INRIA, class_preset
from glnet_geo.errors import InputError


def test_presets_are_consistent():
    for preset in (DEEPGLOBE, INRIA):
        assert len(preset.names) == len(preset.colors) == len(preset.official_order)
        assert sorted(preset.official_order) == list(range(len(preset.names)))
    assert DEEPGLOBE.names[DEEPGLOBE.ignore_index] == "unknown"
    assert DEEPGLOBE.colors[0] == (0, 255, 255) and DEEPGLOBE.colors[6] == (0, 0, 0)
    # the official code numbers "unknown" 0 and urban land 1
    assert DEEPGLOBE.official_order[0] == 1 and DEEPGLOBE.official_order[6] == 0
    assert class_preset("inria") is INRIA and INRIA.names == ("background", "building")


def test_unknown_preset_names_the_choices():
    with pytest.raises(InputError, match="'landsat'; expected one of deepglobe, inria"):
        class_preset("landsat")
