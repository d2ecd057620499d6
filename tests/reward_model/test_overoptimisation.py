"""Gao et al.'s RL form, gold = gold_0 + d (alpha - beta log d), fitted to gold against sqrt(KL)."""

import math

import pytest

from prefrl.reward_model.overoptimisation import GaoFit, fit_gao


def curve(alpha, beta, gold_0, ds):
    return [gold_0 + (d * (alpha - beta * math.log(d)) if d > 0 else 0.0) for d in ds]


def test_fit_recovers_the_parameters_and_the_peak():
    ds = [0.0] + [0.25 * i for i in range(1, 40)]
    fit = fit_gao(ds, curve(1.5, 0.8, 0.3, ds))
    assert fit is not None
    assert (fit.alpha, fit.beta, fit.gold_0) == pytest.approx((1.5, 0.8, 0.3), abs=1e-9)
    assert fit.peak == pytest.approx(math.exp(1.5 / 0.8 - 1))
    grid = [0.01 * i for i in range(1, 1000)]
    assert max(grid, key=fit) == pytest.approx(fit.peak, abs=0.01)  # the fitted gold is highest there
    assert fit(0.0) == 0.3


def test_fit_is_least_squares_under_noise():
    ds = [0.0] + [0.2 * i for i in range(1, 60)]
    noisy = [g + (0.05 if i % 2 else -0.05) for i, g in enumerate(curve(1.0, 0.5, 0.0, ds))]
    fit = fit_gao(ds, noisy)
    assert (
        fit is not None
        and fit.alpha == pytest.approx(1.0, abs=0.05)
        and fit.beta == pytest.approx(0.5, abs=0.05)
    )
    residual = sum((fit(d) - g) ** 2 for d, g in zip(ds[1:], noisy[1:], strict=True))
    nudged = GaoFit(fit.alpha + 0.01, fit.beta, fit.gold_0)
    assert residual < sum((nudged(d) - g) ** 2 for d, g in zip(ds[1:], noisy[1:], strict=True))


def test_too_few_points_or_a_degenerate_set_gives_no_fit_and_bad_lengths_an_error():
    assert fit_gao([], []) is None
    assert fit_gao([0.0, 1.0, 2.0], [0.0, 1.0, 1.5]) is None  # two points with d > 0
    assert fit_gao([1.0, 1.0, 1.0, 1.0], [0.0, 0.1, 0.2, 0.3]) is None  # one d: singular
    with pytest.raises(ValueError, match="one per iteration"):
        fit_gao([0.0, 1.0], [0.0])


def test_the_sqrt_kl_panel_draws_the_fit():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prefrl.cli.plots import _draw_gao_fit

    ds = [0.0] + [0.25 * i for i in range(1, 20)]
    rows = [{"lm/sqrt_kl": d, "lm/gold_score": g} for d, g in zip(ds, curve(1.5, 0.8, 0.3, ds), strict=True)]
    fig, ax = plt.subplots()
    _draw_gao_fit(ax, rows)
    (line,) = ax.lines
    assert line.get_label() == "gold fit d(a - b log d): a=1.50, b=0.80"
    _draw_gao_fit(ax, rows[:2])  # too few points: nothing drawn
    assert len(ax.lines) == 1
    plt.close(fig)
