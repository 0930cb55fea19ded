"""The parts a dataset is divided into."""

from __future__ import annotations

from enum import StrEnum


class Split(StrEnum):
    """Which part of a dataset to read: training, validation during training, or test.

    ``CROSSVALI`` names the GLNet paper's DeepGlobe validation list by its
    file, ``crossvali.txt`` (207 ids): the official code validates and scores
    on it, and the paper's Table 2 corresponds to it. With the paper split,
    ``VAL`` reads the same list and ``TEST`` reads ``test.txt`` (142 ids),
    which the official code never uses.
    """

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    CROSSVALI = "crossvali"
