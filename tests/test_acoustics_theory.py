"""Sabine inversion, image counts and critical distance (oracles of docs/room-acoustics.md §8)."""

import math

import numpy as np
import pytest

from merlib.acoustics import (
    att2t,
    beta_from_t60,
    critical_distance,
    drr_theory_db,
    sabine_alpha,
    t2n,
    t60_from_beta,
)


def test_beta_from_t60_matches_sabine_oracle():
    beta = beta_from_t60([6, 4, 2.9], 0.5)
    assert beta.shape == (6,)
    np.testing.assert_allclose(beta, 0.88802, rtol=1e-4)
    assert sabine_alpha([6, 4, 2.9], 0.5) == pytest.approx(0.21143, rel=1e-3)
    np.testing.assert_allclose(beta_from_t60([8, 8, 2.9], 0.85), 0.91694, rtol=1e-4)


@pytest.mark.parametrize("room,t60", [([6, 4, 2.9], 0.5), ([8, 8, 2.9], 0.85), ([3, 3, 2.9], 0.85)])
def test_sabine_t60_recomputed_from_beta(room, t60):
    assert t60_from_beta(room, beta_from_t60(room, t60)) == pytest.approx(t60, rel=1e-6)


def test_weighted_absorption_still_hits_t60():
    weights = [1.0, 1.0, 0.5, 0.5, 0.2, 1.0]
    beta = beta_from_t60([6, 4, 2.9], 0.6, abs_weights=weights)
    assert t60_from_beta([6, 4, 2.9], beta) == pytest.approx(0.6, rel=1e-9)
    assert beta[4] > beta[0]  # the least absorbing wall reflects most


def test_unreachable_t60_raises_instead_of_zero_beta():
    with pytest.raises(ValueError, match="unreachable"):
        beta_from_t60([30, 30, 10], 0.1)
    with pytest.raises(ValueError):
        beta_from_t60([6, 4, 2.9], 0.0)
    with pytest.raises(ValueError):
        beta_from_t60([6, 4, 2.9], 0.5, abs_weights=[1, 0, 0, 0, 0, 0.0001])  # one wall cannot do it alone


def test_image_counts_and_diffuse_time():
    assert t2n(0.125, [6, 4, 2.9]) == [15, 22, 30]
    assert t2n(0.2125, [8, 8, 2.9]) == [19, 19, 51]
    assert att2t(15, 0.5) == 0.125
    assert att2t(60, 0.85) == pytest.approx(0.85)


def test_critical_distance_values():
    assert critical_distance(26.1, 0.85) == pytest.approx(0.314, abs=1e-3)
    assert critical_distance(185.6, 0.5) == pytest.approx(1.091, abs=2e-3)
    assert critical_distance(3 * 3 * 2.9, 0.5) == pytest.approx(0.409, abs=2e-3)
    assert critical_distance(69.6, 0.5, gamma=4) == pytest.approx(2 * critical_distance(69.6, 0.5), rel=1e-12)
    d_c = critical_distance(69.6, 0.5)
    assert drr_theory_db(d_c, d_c) == 0.0
    assert drr_theory_db(d_c / 10, d_c) == pytest.approx(20.0)
    # ≈ 0.0566·sqrt(V/T60), the handbook form
    assert critical_distance(100.0, 1.0) == pytest.approx(0.0566 * math.sqrt(100.0), rel=2e-3)
