"""Training stages of GLNet (Algorithm 1 of the paper)."""

from __future__ import annotations

from enum import Enum

from glnet_geo.models.glnet import GLNetMode


class Stage(str, Enum):
    """The stage a checkpoint has reached; each implies an inference mode.

    GLOBAL trains G alone on downsampled scenes; GLOBAL_TO_LOCAL freezes G and
    trains L with G->L sharing plus the aggregation layer; LOCAL_TO_GLOBAL
    freezes L and trains G with L->G sharing (G<->L), a frozen copy of the
    stage-1 G feeding L.
    """

    GLOBAL = "global"
    GLOBAL_TO_LOCAL = "global-to-local"
    LOCAL_TO_GLOBAL = "local-to-global"

    @property
    def mode(self) -> GLNetMode:
        """The GLNet mode that predicts with the weights of this stage."""
        return {
            Stage.GLOBAL: GLNetMode.GLOBAL,
            Stage.GLOBAL_TO_LOCAL: GLNetMode.GLOBAL_TO_LOCAL,
            Stage.LOCAL_TO_GLOBAL: GLNetMode.BIDIRECTIONAL,
        }[self]
