"""Each plotting function writes a non-empty PNG file (and rejects mismatched input)."""

from __future__ import annotations

import neo
import numpy as np
import pytest
import quantities as pq

from cortexsim.analysis.plots import (
    plot_activation_function,
    plot_activation_tails,
    plot_distributions,
    plot_dkl_over_time,
    plot_learning_curve,
    plot_raster,
)
from cortexsim.parameters import ActivationFit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000


def test_plot_distributions(tmp_path):
    target = np.full(8, 1 / 8)
    sampled = np.array([0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2])
    path = plot_distributions(target, sampled, tmp_path / "sub" / "dist.png", title="t")
    assert path == tmp_path / "sub" / "dist.png"
    assert_png(path)
    assert_png(plot_distributions(target, [sampled, target], tmp_path / "multi.png",
                                  labels=["target", "run 1", "run 2"]))
    with pytest.raises(ValueError, match="labels must name 3"):
        plot_distributions(target, [sampled, target], tmp_path / "bad.png", labels=["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        plot_distributions(target, np.ones(4) / 4, tmp_path / "bad.png")


def test_plot_dkl_over_time(tmp_path):
    t = np.logspace(2, 5, 20)
    curves = {"D_KL(sampled || target)": 1.0 / np.sqrt(t), "D_KL(target || sampled)": np.r_[np.inf, 2.0 / np.sqrt(t[1:])]}
    assert_png(plot_dkl_over_time(t, curves, tmp_path / "dkl.png"))
    with pytest.raises(ValueError, match="shape"):
        plot_dkl_over_time(t, {"x": np.ones(3)}, tmp_path / "bad.png")


def test_plot_raster(tmp_path):
    trains = [neo.SpikeTrain([0.01, 0.05], units="s", t_stop=0.1 * pq.s), np.array([20.0, 70.0, 90.0])]
    assert_png(plot_raster(trains, tmp_path / "raster.png", t_start=0.0, t_stop=100.0))


def test_plot_activation_function(tmp_path):
    fit = ActivationFit(v_p05=-50.6, alpha=0.8)
    e_l = np.linspace(-55, -46, 30)
    assert_png(plot_activation_function(e_l, fit.p_on(e_l), fit, tmp_path / "act.png"))


def test_plot_activation_tails(tmp_path):
    """Both tails on log axes, points at p_on 0 or 1 (no spike / never off) left out of their panel, and a length
    mismatch refused."""
    fit = ActivationFit(v_p05=-50.6, alpha=0.8)
    e_l = np.linspace(-55, -46, 12)
    p_on = fit.p_on(e_l) ** 1.5
    p_on[0], p_on[-1] = 0.0, 1.0
    assert_png(plot_activation_tails(e_l, p_on, np.full(12, 1e-3), fit, tmp_path / "tails.png", title="t"))
    with pytest.raises(ValueError, match="equal length"):
        plot_activation_tails(e_l, p_on[:-1], np.full(12, 1e-3), fit, tmp_path / "bad.png")


def test_plot_learning_curve(tmp_path):
    it = np.arange(50)
    assert_png(plot_learning_curve(it, {"train": np.exp(-it / 10), "test": np.exp(-it / 12)},
                                   tmp_path / "learn.png", ylabel="D_KL", logy=True))
