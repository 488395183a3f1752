import math

import numpy as np
import pytest
import torch

from service.reward import bt_loss, expected_calibration_error, pairwise_accuracy


def _ls(x: float) -> float:  # log sigmoid
    return -math.log1p(math.exp(-x))


def test_soft_label_margin_loss_by_hand() -> None:
    rc, rr = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1.0, 0.5, 1.0])
    w, m, sw = torch.tensor([1.0, 0.5, 0.8]), torch.tensor([0.0, 0.0, 0.5]), torch.tensor([1.0, 2.0, 0.5])
    # d = 1, 0, -2
    l1 = -_ls(1.0)
    l2 = -(0.5 * _ls(0.0) + 0.5 * _ls(0.0))
    l3 = -(0.8 * _ls(-2.0 - 0.5) + 0.2 * _ls(2.0 - 0.5))
    expected = (1.0 * l1 + 2.0 * l2 + 0.5 * l3) / 3
    assert float(bt_loss(rc, rr, w, m, sw)) == pytest.approx(expected, rel=1e-6)
    assert float(bt_loss(rc, rr)) == pytest.approx((-_ls(1.0) - _ls(0.0) - _ls(-2.0)) / 3, rel=1e-6)
    centred = float(bt_loss(rc, rr, center_coef=0.1))
    assert centred == pytest.approx(float(bt_loss(rc, rr)) + 0.1 * (9 + 1 + 0) / 3, rel=1e-6)


def test_soft_label_half_is_minimised_at_zero_gap() -> None:
    d = torch.linspace(-2, 2, 41, requires_grad=True)
    loss = bt_loss(d, torch.zeros_like(d), torch.full_like(d, 0.5), torch.full_like(d, 0.3))
    losses = [float(bt_loss(x[None], torch.zeros(1), torch.tensor([0.5]), torch.tensor([0.3]))) for x in d.detach()]
    assert int(np.argmin(losses)) == 20 and loss.requires_grad


def test_accuracy_ties_and_soft_labels() -> None:
    assert pairwise_accuracy(np.array([1.0, -1.0, 0.0, 2.0])) == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert pairwise_accuracy(np.array([1.0, -1.0]), np.array([0.8, 0.8])) == pytest.approx((0.8 + 0.2) / 2)


def test_ece_by_hand() -> None:
    # p = sigmoid(d): confidences 0.731 (right), 0.731 (wrong), 0.881 (right)
    d = np.array([1.0, -1.0, 2.0])
    c1, c2 = 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-2))
    # bins of width .05 over [.5, 1]: c1 -> bin 4, c2 -> bin 7
    expected = (2 * abs(0.5 - c1) + abs(1.0 - c2)) / 3
    assert expected_calibration_error(d) == pytest.approx(expected, rel=1e-9)
    assert math.isnan(expected_calibration_error(np.array([])))
