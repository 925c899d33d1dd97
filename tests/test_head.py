"""The one head-motion model (mevqa.motion.head): robust similarity fits on rigid landmarks."""
import numpy as np
import pytest

from mevqa.motion.head import (RIGID_INDICES, fit_head_motion, head_displacement, head_flow, remove_head_flow,
                               similarity_params)


def _similarity(scale, degrees, tx, ty):
    a = scale * np.cos(np.radians(degrees))
    b = scale * np.sin(np.radians(degrees))
    return np.array([[a, -b, tx], [b, a, ty]])


@pytest.mark.parametrize("method", ["lmeds", "ransac"])
def test_fit_recovers_a_similarity_despite_moved_points(method):
    rng = np.random.default_rng(0)
    src = rng.uniform(40, 180, (len(RIGID_INDICES), 2))
    m = _similarity(1.01, -1.2, 0.7, -0.3)
    dst = src @ m[:, :2].T + m[:, 2]
    dst[:3] += (2.0, -1.5)  # three landmarks an expression moved
    fit = fit_head_motion(src, dst, method=method)
    assert np.allclose(head_displacement(fit, src[3:]), dst[3:] - src[3:], atol=1e-3)
    scale, deg, tx, ty = similarity_params(fit)
    assert scale == pytest.approx(1.01, abs=1e-4) and deg == pytest.approx(-1.2, abs=1e-2)


def test_subpixel_motion_keeps_its_precision():
    """Micro-expression flows are a fraction of a pixel: the fit must not round them away."""
    src = np.array([[100, 80], [124, 80], [112, 100], [112, 120], [70, 90], [154, 90]], float)
    m = _similarity(1.0005, 0.05, 0.03, -0.02)
    fit = fit_head_motion(src, src @ m[:, :2].T + m[:, 2])
    assert np.allclose(fit, m, atol=2e-5)


def test_degenerate_input_falls_back_to_median_translation():
    src = np.array([[10.0, 10.0], [20.0, 10.0]])
    fit = fit_head_motion(src, src + (0.5, 0.25))
    assert np.allclose(fit, [[1, 0, 0.5], [0, 1, 0.25]])
    with pytest.raises(ValueError, match="unknown head-motion method"):
        fit_head_motion(src, src, method="magic")


def test_head_flow_and_removal_agree_with_displacement():
    m = _similarity(0.99, 2.0, 1.0, -0.5)
    f = head_flow(m, (30, 40))
    assert f.shape == (30, 40, 2)
    assert np.allclose(f[7, 11], head_displacement(m, np.array([11.0, 7.0])), atol=1e-5)
    assert np.allclose(remove_head_flow(f, m), 0, atol=1e-5)
