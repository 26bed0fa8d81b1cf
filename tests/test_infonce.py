"""Symmetric InfoNCE against hand computations."""
from __future__ import annotations

import math

import pytest
import torch

from p3d.losses.infonce import info_nce, multilayer_info_nce


def test_2x2_identity_pairs_temperature_1():
    a = torch.eye(2)
    # logits = I: each row's CE = -log(e^1 / (e^1 + e^0)) = log(1 + e^-1), both directions alike
    expected = math.log(1 + math.exp(-1))
    assert info_nce(a, a, temperature=1.0).item() == pytest.approx(expected, abs=1e-6)


def test_2x2_asymmetric_pairs():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    # logits = a b^T / 0.5 = [[1.2, 0.0], [1.6, 2.0]]
    # speech -> mesh (rows):    log(1 + e^(0 - 1.2)) and log(1 + e^(1.6 - 2.0))
    # mesh -> speech (columns): log(1 + e^(1.6 - 1.2)) and log(1 + e^(0 - 2.0))
    rows = (math.log(1 + math.exp(-1.2)) + math.log(1 + math.exp(-0.4))) / 2
    cols = (math.log(1 + math.exp(0.4)) + math.log(1 + math.exp(-2.0))) / 2
    assert info_nce(a, b, temperature=0.5).item() == pytest.approx(0.5 * (rows + cols), abs=1e-6)
    assert 0.5 * (rows + cols) == pytest.approx(0.45406, abs=1e-5)


def test_3x3_orthonormal_at_the_official_temperature():
    a = torch.eye(3, dtype=torch.float64)  # float64: the loss is ~1e-6
    # logits: 1/0.07 on the diagonal, 0 elsewhere: CE = log(1 + 2 e^(-1/0.07)) in every row/column
    expected = math.log(1 + 2 * math.exp(-1 / 0.07))
    assert info_nce(a, a).item() == pytest.approx(expected, rel=1e-4)
    # swapping pairs 0 and 1: rows 0 and 1 have logits (0, 1/t, 0) and (1/t, 0, 0), target 0 and 1: CE =
    # log(2 + e^(1/t)); row 2 unchanged; the columns are the same by symmetry
    b = a[[1, 0, 2]]
    swapped = (2 * math.log(2 + math.exp(1 / 0.07)) + math.log(1 + 2 * math.exp(-1 / 0.07))) / 3
    assert info_nce(a, b).item() == pytest.approx(swapped, rel=1e-4)


def test_multilayer_sum_and_gradients():
    torch.manual_seed(0)
    a = [torch.nn.functional.normalize(torch.randn(4, 5), dim=1).requires_grad_() for _ in range(2)]
    b = [torch.nn.functional.normalize(torch.randn(4, 5), dim=1) for _ in range(2)]
    total = multilayer_info_nce(a, b)
    assert total.item() == pytest.approx((info_nce(a[0], b[0]) + info_nce(a[1], b[1])).item(), rel=1e-6)
    total.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in a)


def test_bad_shapes():
    with pytest.raises(ValueError):
        info_nce(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError):
        multilayer_info_nce([], [])


def test_from_logits_equals_from_embeddings():
    from p3d.losses.infonce import info_nce_from_logits

    torch.manual_seed(1)
    a = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)
    b = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)
    torch.testing.assert_close(info_nce_from_logits(a @ b.T / 0.07), info_nce(a, b))
    with pytest.raises(ValueError):
        info_nce_from_logits(torch.zeros(2, 3))


@pytest.mark.parametrize("tau", [0.0, -0.07, float("nan"), float("inf"), "warm"])
def test_a_temperature_that_is_not_positive_and_finite_is_refused(tau):
    from p3d.errors import InputError
    from p3d.losses.perceptual_loss import PerceptualLoss

    a = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    with pytest.raises(InputError, match="temperature: expected a finite number > 0"):
        info_nce(a, a.flip(0), tau)  # tau = 0 gave NaN, tau < 0 a loss that rewards the wrong pairs
    with pytest.raises(InputError, match="temperature: expected a finite number > 0"):
        PerceptualLoss(torch.nn.Linear(1, 1), temperature=tau)


def test_an_empty_batch_is_refused_not_a_nan_loss():
    from p3d.errors import InputError
    from p3d.losses.infonce import info_nce_from_logits

    with pytest.raises(InputError, match="empty batch"):
        info_nce(torch.zeros(0, 8), torch.zeros(0, 8))
    with pytest.raises(InputError, match="empty batch"):
        info_nce_from_logits(torch.zeros(0, 0))


def test_logits_stay_float32_under_bf16_autocast():
    """``--bf16`` runs the critic under autocast; the (B, B) logits product was rounded to bfloat16 before the
    division by tau (value off by 1.5e-3, gradient by several %). It is now float32, as outside autocast."""
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(80, 32, generator=g), dim=1)
    b = torch.nn.functional.normalize(a + 0.3 * torch.randn(80, 32, generator=g), dim=1).requires_grad_()
    plain = info_nce(a, b)
    (grad,) = torch.autograd.grad(plain, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = info_nce(a, b)
    (cast_grad,) = torch.autograd.grad(cast, b)
    assert cast.dtype == torch.float32
    torch.testing.assert_close(cast, plain, rtol=0, atol=0)
    torch.testing.assert_close(cast_grad, grad, rtol=0, atol=0)
    half = info_nce(a.bfloat16(), b.detach().bfloat16())  # narrower inputs are widened to float32 first
    assert half.dtype == torch.float32
