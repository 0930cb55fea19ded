from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glnet_geo.errors import InputError
from glnet_geo.models.losses import FocalLoss, feature_map_regularizer, focal_loss


def test_focal_loss_matches_its_formula_by_hand():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]], [[-1.0, 3.0]]]])  # (1, 3, 1, 2)
    target = torch.tensor([[[0, 2]]])
    gamma = 2.0

    def term(scores, k):
        p = math.exp(scores[k]) / sum(math.exp(s) for s in scores)
        return -((1 - p) ** gamma) * math.log(p)

    by_hand = (term([2.0, 0.0, -1.0], 0) + term([0.0, 1.0, 3.0], 2)) / 2
    assert focal_loss(logits, target, gamma=gamma).item() == pytest.approx(by_hand, rel=1e-6)
    # the second pixel ignored: only the first one counts
    ignored = focal_loss(logits, target, gamma=gamma, ignore_index=2)
    assert ignored.item() == pytest.approx(term([2.0, 0.0, -1.0], 0), rel=1e-6)


def test_gamma_zero_is_cross_entropy_and_default_gamma_is_six():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6)
    target = torch.randint(0, 4, (2, 5, 6))
    torch.testing.assert_close(focal_loss(logits, target, gamma=0, ignore_index=3),
                               F.cross_entropy(logits, target, ignore_index=3))
    assert FocalLoss().gamma == 6.0
    torch.testing.assert_close(FocalLoss(ignore_index=1)(logits, target),
                               focal_loss(logits, target, 6.0, 1))


def test_no_valid_pixel_gives_zero_with_a_gradient():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = focal_loss(logits, torch.full((1, 2, 2), 2), ignore_index=2)
    loss.backward()
    assert loss.item() == 0 and logits.grad is not None


def test_bad_targets():
    logits = torch.randn(1, 3, 2, 2)
    with pytest.raises(InputError, match=r"class id 3; expected ids in 0..2"):
        focal_loss(logits, torch.full((1, 2, 2), 3))
    with pytest.raises(InputError, match=r"expected \(B, K, H, W\) and \(B, H, W\)"):
        focal_loss(logits, torch.zeros(1, 3, 3, dtype=torch.long))


def test_regulariser_is_the_mse_and_leaves_the_global_side_alone():
    local = torch.randn(2, 4, 3, 3, requires_grad=True)
    global_ = torch.randn(2, 4, 3, 3, requires_grad=True)
    term = feature_map_regularizer(local, global_)
    torch.testing.assert_close(term, ((local - global_) ** 2).mean())
    term.backward()
    assert local.grad is not None and global_.grad is None
