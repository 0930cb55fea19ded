"""Training stages of GLNet (Algorithm 1 of the paper): what each one trains.

Stage 1 (``GLOBAL``) trains G on downsampled scenes. Stage 2
(``GLOBAL_TO_LOCAL``) freezes G and trains L with G->L sharing. Stage 3
(``LOCAL_TO_GLOBAL``) freezes L and trains G, including the layers that take
L's merged maps, while a frozen copy of the stage-1 G feeds L. As in the
official code, the aggregation layer is trained in every stage (in stage 1 it
gets no gradient). The paper's learning rates are 1e-4 for G and 2e-5 for L;
the aggregation layer takes the rate of the branch trained with it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from glnet_geo.models.glnet import GLNetMode

if TYPE_CHECKING:
    from glnet_geo.models.glnet import GLNet

#: Learning rates of the paper.
LR_GLOBAL = 1e-4
LR_LOCAL = 2e-5


class Stage(StrEnum):
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

    @property
    def trained_branch(self) -> str:
        """The branch this stage trains: ``global_branch`` or ``local_branch``."""
        return "local_branch" if self is Stage.GLOBAL_TO_LOCAL else "global_branch"


def prepare_stage(model: GLNet, stage: Stage | str) -> None:
    """Freeze everything ``stage`` does not train.

    The trained branch and the aggregation layer get ``requires_grad=True``;
    the other branch gets ``requires_grad=False`` and stays in eval mode
    (batch norm keeps its running statistics) even after ``model.train()``.
    For ``LOCAL_TO_GLOBAL``, a model without the frozen copy of G gets one,
    copied from its current G (which is the stage-1 G, since stage 2 froze it).
    """
    stage = Stage(stage)
    if stage is Stage.LOCAL_TO_GLOBAL and model.fixed_global_branch is None:
        model.freeze_global_copy()
    model.set_trainable((stage.trained_branch, "aggregation"))


def stage_parameter_groups(model: GLNet, stage: Stage | str, lr_global: float = LR_GLOBAL,
                           lr_local: float = LR_LOCAL) -> list[dict[str, Any]]:
    """Optimizer parameter groups of the parameters ``stage`` trains.

    Args:
        model: The network.
        stage: The training stage.
        lr_global: Learning rate of G (stages 1 and 3).
        lr_local: Learning rate of L (stage 2).

    Returns:
        ``[{"name": branch, "params": [...], "lr": lr}, {"name": "aggregation",
        ...}]``, ready for :class:`torch.optim.Adam`.

    """
    stage = Stage(stage)
    lr = lr_local if stage is Stage.GLOBAL_TO_LOCAL else lr_global
    return [{"name": name, "params": list(getattr(model, name).parameters()), "lr": lr}
            for name in (stage.trained_branch, "aggregation")]
