"""GLNet's training losses: focal loss and the feature-map regulariser."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glnet_geo.errors import InputError

#: Focusing parameter of the paper (the official code used 3).
DEFAULT_GAMMA = 6.0


def focal_loss(logits: Tensor, target: Tensor, gamma: float = DEFAULT_GAMMA,
               ignore_index: int | None = None) -> Tensor:
    """Focal loss ``-(1 - p_t)^gamma * log(p_t)``, averaged over valid pixels.

    ``p_t`` is the softmax probability of the target class (Lin et al., 2017);
    ``gamma = 0`` gives the cross-entropy.

    Args:
        logits: ``(B, K, H, W)`` class scores.
        target: ``(B, H, W)`` integer class ids.
        gamma: Focusing parameter (>= 0).
        ignore_index: Class id whose pixels are left out.

    Returns:
        A scalar; 0 (still attached to ``logits``) when no pixel is valid.

    Raises:
        InputError: Mismatched shapes or class ids outside ``0..K-1``.

    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise InputError(f"focal loss got logits {tuple(logits.shape)} and target "
                         f"{tuple(target.shape)}; expected (B, K, H, W) and (B, H, W)")
    if gamma < 0:
        raise InputError(f"gamma={gamma}; expected a focusing parameter >= 0")
    target = target.long()
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None \
        else target != ignore_index
    classes = target[valid]
    if classes.numel() == 0:
        return logits.sum() * 0.0
    num_classes = logits.shape[1]
    low, high = int(classes.min()), int(classes.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise InputError(f"target holds class id {bad}; expected ids in 0..{num_classes - 1}"
                         f"{'' if ignore_index is None else f' or {ignore_index} (ignored)'}")
    log_probs = F.log_softmax(logits, dim=1).movedim(1, -1)[valid]
    log_pt = log_probs.gather(1, classes[:, None])[:, 0]
    return (-(1.0 - log_pt.exp()).pow(gamma) * log_pt).mean()


class FocalLoss(nn.Module):
    """:func:`focal_loss` as a module."""

    def __init__(self, gamma: float = DEFAULT_GAMMA, ignore_index: int | None = None) -> None:
        """Keep the loss settings."""
        super().__init__()
        self.gamma = gamma
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Return the focal loss of ``logits`` against ``target``."""
        return focal_loss(logits, target, self.gamma, self.ignore_index)

    def extra_repr(self) -> str:  # noqa: D102
        return f"gamma={self.gamma}, ignore_index={self.ignore_index}"


def feature_map_regularizer(local: Tensor, global_: Tensor) -> Tensor:
    """Mean squared difference ``||X_L - X_G||^2`` between L's and G's ps3 maps.

    G's side is detached, so the gradient reaches the local branch only. The
    training loss adds it weighted by lambda (0.15 in the paper).

    Args:
        local: L's ps3 for some patches.
        global_: The crop of G's ps3 at those patches, resized to ``local``.

    """
    return F.mse_loss(local, global_.detach())
