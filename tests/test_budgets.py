"""Runs compared at one budget: trials cut early (their metric an early epoch's) are left out by default, the
ones that went further are compared at the chosen budget from their history, and the notes say so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.synthetic_runs import table_of
from trellis.search.analysis.budgets import at_budget, budget_choice, budget_levels
from trellis.search.analysis.report import analyse


def _mixed(seed: int = 0):
    """x's best final value (budget 9) is at 0.8; cut runs (budget 1) look best near 0.2 and score higher."""
    rng = np.random.default_rng(seed)
    late, early = rng.uniform(0, 1, 60), rng.uniform(0, 1, 120)
    x = np.concatenate([late, early])
    acc = np.concatenate([0.9 - (late - 0.8) ** 2, 0.95 - (early - 0.2) ** 2])
    reached = [9] * 60 + [1] * 120
    table = table_of({"x": x, "u": rng.uniform(0, 1, 180)}, {"acc": acc}, {"trellis.budget.reached": reached})
    history = pd.DataFrame(
        {"run_id": table.runs["run_id"].iloc[:60], "key": "acc", "step": 1, "value": 0.95 - (late - 0.2) ** 2}
    )
    return table, history


def test_the_largest_budget_enough_runs_reached_is_chosen_and_the_cut_runs_left_out():
    table, _ = _mixed()
    assert budget_levels(table.trials, "acc") == {9.0: 60, 1.0: 180}
    report = analyse(table, table.trials, "acc", "max")
    assert len(report.data.y) == 60
    assert report.data.notes["runs stopped before budget 9 (left out: their acc is an earlier budget's)"] == 120
    x = report.verdicts["x"]
    assert x.action == "narrow" and x.low <= 0.8 <= x.high and x.low > 0.4
    mixed = analyse(table, table.trials, "acc", "max", budget=None)  # every run as it ended: misled
    assert len(mixed.data.y) == 180 and mixed.verdicts["x"].low < 0.3


def test_an_earlier_budget_compares_the_longer_runs_at_it_from_their_history():
    table, history = _mixed()
    choice = budget_choice(table.trials, "acc", 1)
    assert choice.budget == 1 and len(choice.beyond) == 60
    trials, notes = at_budget(table.trials, "acc", choice, history)
    assert len(trials) == 180 and notes == {"runs past budget 1, compared at it (their history)": 60}
    first = trials.set_index("run_id").loc[history["run_id"], "metrics.acc"].to_numpy()
    assert first == pytest.approx(history["value"].to_numpy())
    report = analyse(table, table.trials, "acc", "max", budget=1, history=history)
    assert report.verdicts["x"].low <= 0.2 <= report.verdicts["x"].high  # at budget 1 every run peaks near 0.2
    # Without their history the longer runs keep their final value, and the note says so.
    _, notes = at_budget(table.trials, "acc", choice, None)
    assert notes == {"runs past budget 1, compared at their final value (their history was not read)": 60}


def test_one_budget_or_none_recorded_is_no_choice():
    table = table_of({"x": [0.1, 0.2, 0.3, 0.4]}, {"acc": [1.0, 2.0, 3.0, 4.0]})
    trials = table.trials
    assert not budget_choice(trials, "acc").chosen
    kept, notes = at_budget(trials, "acc", budget_choice(trials, "acc"))
    assert kept is trials and notes == {}
