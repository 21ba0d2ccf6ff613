"""Choices defined once in core: the synthesis methods (what each does to the events) and the dataset settings'
descriptions, which also validate a `Settings`."""

import pytest

from core.data.recipes import DATASET_METHODS, Settings, setting_options
from core.errors import InputError
from core.synthesis.methods import METHOD_INFO, METHODS, limit_to_method


def test_methods_keep_their_processing_order_and_say_what_they_apply():
    assert METHODS == ("changen", "copy-paste", "inpainting", "changen2")  # Processing passes the index
    assert DATASET_METHODS == ("mixed", "changen", "copy-paste", "inpainting")
    assert limit_to_method("changen", 2, 3) == (True, True, [])
    removes, creates, notes = limit_to_method("copy-paste", 2, 3)
    assert (removes, creates) == (False, True) and "2 removal(s) were not applied" in notes[0]
    removes, creates, notes = limit_to_method("inpainting", 0, 3)
    assert (removes, creates) == (True, False) and "3 copy(ies) were not created" in notes[0]
    assert all(info.label and info.description for info in METHOD_INFO.values())


def test_every_offered_setting_has_a_default_and_is_checked():
    offered = {item.name for item, _ in setting_options()}
    assert offered == {item for item in Settings.__dataclass_fields__} - {"min_area"}
    assert Settings().method == "mixed" and Settings().crop == 256
    for wrong in (
        {"crop": 16},
        {"star": 1.5},
        {"remove_range": (0.9, 0.1)},
        {"create_max": 0},
        {"method": "x"},
    ):
        with pytest.raises(InputError):
            Settings(**wrong)
