"""Pareto fronts, ranks and hypervolumes against brute force and hand-computed values (issue 27)."""

from __future__ import annotations

import numpy as np
import pytest

from trellis.search.pareto import hypervolume, pareto_front, pareto_ranks, reference_point


def brute_force_front(values: np.ndarray, directions: list[str]) -> np.ndarray:
    losses = values * np.array([-1.0 if d == "max" else 1.0 for d in directions])
    out = np.ones(len(losses), dtype=bool)
    for i, p in enumerate(losses):
        dominated_by = np.all(losses <= p, axis=1) & np.any(losses < p, axis=1)
        out[i] = not dominated_by.any()
    return out


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_front_is_the_brute_force_front(k, seed):
    rng = np.random.default_rng(seed)
    values = rng.random((600, k))
    values[::7, 0] = values[1::7, 0]  # ties in one objective
    values[5] = values[6]  # a duplicate row: both or neither on the front
    directions = ["max" if j % 2 else "min" for j in range(k)]
    np.testing.assert_array_equal(pareto_front(values, directions), brute_force_front(values, directions))


def test_a_zdt1_front_is_found_among_dominated_points():
    """ZDT1 (two objectives, minimised): the front is f2 = 1 - sqrt(f1) where g = 1 (x2..xn = 0)."""
    rng = np.random.default_rng(3)
    x = rng.random((400, 5))
    x[:50, 1:] = 0.0  # fifty points exactly on the true front
    f1 = x[:, 0]
    g = 1 + 9 * x[:, 1:].mean(axis=1)
    f2 = g * (1 - np.sqrt(f1 / g))
    front = pareto_front(np.c_[f1, f2], ["min", "min"])
    assert set(np.flatnonzero(front)) == set(range(50))


def test_ranks_peel_fronts_and_leave_non_finite_rows_unranked():
    values = np.array([[1, 1], [2, 2], [3, 3], [1, 3], [np.nan, 0], [0.5, 5]], dtype=float)
    ranks = pareto_ranks(values, ["min", "min"])
    assert ranks.tolist() == [1, 2, 3, 2, 0, 1]
    assert not pareto_front(values, ["min", "min"])[4]


def test_hypervolume_against_hand_computed_values():
    # 2D, minimised, reference (4, 4): staircase of (1,3), (2,2), (3,1) covers 3 + 2 + 1 = 6
    front = np.array([[1, 3], [2, 2], [3, 1], [3.5, 3.5]], dtype=float)  # the last is dominated: adds nothing
    assert hypervolume(front, ["min", "min"], [4, 4]) == pytest.approx(6.0)
    # the same, maximising both against reference (0, 0): values mirrored
    assert hypervolume(4 - front, ["max", "max"], [0, 0]) == pytest.approx(6.0)
    # 3D: two boxes [0,2]x[0,1]x[0,1] and [0,1]x[0,2]x[0,1] from reference (2, 2, 1) -> 2 + 2 - 1 = 3
    boxes = np.array([[0, 1, 0], [1, 0, 0]], dtype=float)
    assert hypervolume(boxes, ["min", "min", "min"], [2, 2, 1]) == pytest.approx(3.0)
    assert hypervolume(np.array([[5.0, 5.0]]), ["min", "min"], [4, 4]) == 0.0  # beyond the reference


def test_hypervolume_in_3d_agrees_with_monte_carlo():
    rng = np.random.default_rng(7)
    values = rng.random((40, 3))
    ref = np.array([1.0, 1.0, 1.0])
    exact = hypervolume(values, ["min"] * 3, ref)
    samples = rng.random((200_000, 3))
    covered = np.zeros(len(samples), dtype=bool)
    for p in values:
        covered |= np.all(samples >= p, axis=1)
    assert exact == pytest.approx(covered.mean(), abs=0.01)


def test_the_reference_point_is_worse_than_every_value_and_says_how():
    values = np.array([[0.9, 10.0], [0.8, 5.0]])
    ref = reference_point(values, ["max", "min"])
    assert ref.point[0] < 0.8 and ref.point[1] > 10.0 and "worst value" in ref.how
    assert hypervolume(values, ["max", "min"], ref.point) > 0


def test_a_large_3d_front_gives_the_same_hypervolume_as_monte_carlo():
    """Points on a sphere's octant: every one non-dominated (the sweep's worst case)."""
    rng = np.random.default_rng(11)
    u = rng.random((500, 3)) + 0.05
    values = u / np.linalg.norm(u, axis=1, keepdims=True)  # minimised: the front bulges towards the origin
    assert pareto_front(values, ["min"] * 3).sum() == 500
    ref = np.array([1.0, 1.0, 1.0])
    exact = hypervolume(values, ["min"] * 3, ref)
    samples = rng.random((300_000, 3))
    covered = np.zeros(len(samples), dtype=bool)
    for start in range(0, len(samples), 20_000):
        part = samples[start : start + 20_000]
        covered[start : start + 20_000] = np.any(np.all(part[:, None, :] >= values[None, :, :], axis=2), axis=1)
    assert exact == pytest.approx(covered.mean(), abs=0.005)


def test_each_points_hypervolume_contribution_is_what_the_front_loses_without_it():
    """Minimise both, reference (4, 4): the staircase (1, 3), (2, 2), (3, 1) covers 6; each point alone adds 1
    (without any one the rest cover 5); (3, 3) is dominated and adds nothing."""
    from trellis.search.pareto import contributions

    values = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0]])
    assert contributions(values, ["min", "min"], [4.0, 4.0]).tolist() == [1.0, 1.0, 1.0, 0.0]
    assert hypervolume(values, ["min", "min"], [4.0, 4.0]) == 6.0


def test_importance_per_objective_and_for_the_hypervolume_contribution():
    """f1 = a, f2 = 1 - a + b (both minimised): f1 is all a; f2 splits between a and b; only trials with a
    small b reach the front, so b decides the contribution far more than u, which does nothing."""
    from tests.synthetic_runs import table_of
    from trellis.search.analysis.pareto_analysis import process

    rng = np.random.default_rng(0)
    n = 200
    a, b, u = rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    table = table_of({"a": a, "b": b, "u": u}, {"f1": a, "f2": 1 - a + b})
    data = process(table, table.trials, "f1:min,f2:min")
    shares = data["importance"]
    assert shares["f1 (min)"]["a"][0] > 0.9 and shares["f1 (min)"]["u"][0] < 0.05
    assert shares["f2 (min)"]["a"][0] == pytest.approx(0.5, abs=0.1) and shares["f2 (min)"]["b"][0] == pytest.approx(
        0.5, abs=0.1
    )
    contribution = shares["hypervolume contribution"]
    assert contribution["b"][0] > contribution["u"][0] and contribution["u"][0] < 0.1
    assert process(table, table.trials, "f1:min,f2:min", "9,9")["reference"] == [9.0, 9.0]
    assert "one finite number per objective" in process(table, table.trials, "f1:min,f2:min", "9")["problem"]
