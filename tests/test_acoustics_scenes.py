"""The paper's room sampler: invariants over 1000 draws (docs/room-acoustics.md §7, §8)."""

import numpy as np
import pytest

from merlib.acoustics import (
    MOBILE_GEOMETRY,
    PaperSceneConfig,
    beta_from_t60,
    critical_distance,
    pair_distances,
    sample_paper_scene,
    with_distance,
)


def test_sampler_invariants_over_1000_draws():
    rng = np.random.default_rng(0)
    geo = pair_distances(MOBILE_GEOMETRY)
    dists, yaws = [], []
    for _ in range(1000):
        s = sample_paper_scene(rng)
        length, width, height = s.room_dim
        assert 3 <= length <= 8 and 3 <= width <= 8
        assert max(length, width) / min(length, width) <= 1.6
        assert height == 2.9
        assert 0.5 <= s.src[0] <= length - 0.5 and 0.5 <= s.src[1] <= width - 0.5
        assert s.src[2] == 1.75
        assert np.all(s.mics[:, 2] == pytest.approx(1.6, abs=1e-12))
        assert 0.5 <= s.t60 <= 0.85
        assert s.critical_distance == pytest.approx(critical_distance(np.prod(s.room_dim), s.t60))
        assert 0.2 <= s.distance <= s.critical_distance + 1e-9
        assert np.linalg.norm(s.mics.mean(axis=0) - s.src) == pytest.approx(s.distance, abs=1e-9)
        assert np.all(s.mics > 0) and np.all(s.mics < s.room_dim[None, :])
        assert np.all(s.mics[:, :2] >= 0.1 - 1e-12) and np.all(s.mics[:, :2] <= s.room_dim[:2] - 0.1 + 1e-12)
        np.testing.assert_allclose(pair_distances(s.mics), geo, atol=1e-9)
        np.testing.assert_allclose(s.beta, beta_from_t60(s.room_dim, s.t60))
        dists.append(s.distance / s.critical_distance)
        yaws.append(s.yaw)
    # distances and yaws really are spread over their ranges
    assert min(dists) < 0.5 and max(dists) > 0.95
    assert np.histogram(yaws, bins=4, range=(0, 2 * np.pi))[0].min() > 150


def test_sampler_is_deterministic_and_scene_settings():
    a = sample_paper_scene(np.random.default_rng(7))
    b = sample_paper_scene(np.random.default_rng(7))
    assert a.to_dict() == b.to_dict()
    assert a.fs == 16000 and a.t_diff == pytest.approx(a.t60 / 4) and a.t_max == pytest.approx(a.t60)
    assert len(a.nb_img) == 3


def test_config_changes_the_protocol():
    cfg = PaperSceneConfig(t60_range=(0.3, 0.3), height=3.5)
    s = sample_paper_scene(np.random.default_rng(0), cfg)
    assert s.t60 == 0.3 and s.room_dim[2] == 3.5


def test_with_distance_moves_array():
    s = sample_paper_scene(np.random.default_rng(1))
    t = with_distance(s, 0.3, azimuth=0.0)
    assert t.distance == 0.3
    assert np.linalg.norm(t.mics.mean(axis=0) - t.src) == pytest.approx(0.3)
    np.testing.assert_allclose(pair_distances(t.mics), pair_distances(s.mics), atol=1e-12)
    with pytest.raises(ValueError):
        with_distance(s, 20.0)
