"""The parts a dataset is divided into."""

from __future__ import annotations

from enum import StrEnum


class Split(StrEnum):
    """Which part of a dataset to read: training, validation during training, or test."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
