"""The progress bar of a prediction run (over patches in this process, over scenes on Dask)."""

from __future__ import annotations

from typing import Any


def progress_bar(total: int, description: str, unit: str, enabled: bool | None) -> Any:
    """Return a tqdm bar, shown only on a terminal unless ``enabled`` says otherwise.

    Args:
        total: Units of work.
        description: Label in front of the bar (the input's name, ``scenes``).
        unit: Name of a unit (``patch``, ``scene``).
        enabled: True or False to force it on or off; None: on a terminal only.

    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True,
                disable=None if enabled is None else not enabled, leave=False)
