"""Class presets of the datasets GLNet was published on.

A preset names the classes in the order of their ids, their RGB colours (the
colours of the dataset's label images), the ignored class, and, for importing
the official GLNet checkpoints, which output channel of the official network
holds each class.
"""

from __future__ import annotations

from dataclasses import dataclass

from glnet_geo.errors import InputError

#: The class id of a pixel without a class: unlabelled in training data (never in
#: the loss or the scores) and nodata in predicted class rasters and their parts.
NO_CLASS = 255

#: Colours of classes that come without one (cycled for more than ten classes).
DEFAULT_COLORS = [
    (0, 255, 255), (255, 255, 0), (255, 0, 255), (0, 255, 0), (0, 0, 255),
    (255, 255, 255), (0, 0, 0), (255, 128, 0), (128, 0, 255), (128, 128, 128),
]


@dataclass(frozen=True)
class ClassPreset:
    """Class names, colours and the ignored class of a dataset.

    Attributes:
        names: Class names, index = class id.
        colors: RGB colour of each class.
        ignore_index: Class id left out of losses and metrics, or None.
        official_order: For each class id, the output channel of the official
            GLNet network that predicts it.

    """

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_index: int | None
    official_order: tuple[int, ...]


#: DeepGlobe Land Cover (the order of torchgeo's DeepGlobeLandCover). The
#: official GLNet code numbers "unknown" 0 and the other classes 1..6.
DEEPGLOBE = ClassPreset(
    names=("urban_land", "agriculture_land", "rangeland", "forest_land", "water",
           "barren_land", "unknown"),
    colors=((0, 255, 255), (255, 255, 0), (255, 0, 255), (0, 255, 0), (0, 0, 255),
            (255, 255, 255), (0, 0, 0)),
    ignore_index=6,
    official_order=(1, 2, 3, 4, 5, 6, 0),
)

#: Inria Aerial Image Labeling: building footprints.
INRIA = ClassPreset(
    names=("background", "building"),
    colors=((0, 0, 0), (255, 255, 255)),
    ignore_index=None,
    official_order=(0, 1),
)

PRESETS: dict[str, ClassPreset] = {"deepglobe": DEEPGLOBE, "inria": INRIA}


def class_preset(name: str) -> ClassPreset:
    """Look up the preset called ``name``.

    Raises:
        InputError: Unknown name.

    """
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown class preset {name!r}; expected one of "
                         f"{', '.join(PRESETS)}") from None
