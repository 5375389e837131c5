"""Live pages: when a poll asks the pages to redraw, what the pickers keep, when the space analysis is redone."""

from types import SimpleNamespace

import pandas as pd

from trellis.app.pages.space import SteadyReports
from trellis.layouts.live import detail_click, ended_state, kept_choice, live_step, next_version


def test_first_poll_and_selection_changes_only_record_the_fingerprint():
    step = live_step(None, ["2", "1"], [3, 3, 10, 20, 1, 5, 7], tick=True)
    assert step == ({"experiments": ["1", "2"], "fingerprint": [3, 3, 10, 20, 1, 5, 7]}, False)
    # A new selection redraws the pages by itself: the poll it triggers records, never bumps.
    moved = live_step(step.seen, ["1", "2"], [4, 4, 11, 20, 1, 5, 7], tick=False)
    assert moved.changed is False and moved.seen["fingerprint"] == [4, 4, 11, 20, 1, 5, 7]
    # Other experiments polled on a tick: their fingerprint is not comparable with the last one.
    other = live_step(step.seen, ["3"], [9, 9, 9, 9, 0, 0, 0], tick=True)
    assert other.changed is False and other.seen["experiments"] == ["3"]


def test_a_tick_bumps_only_when_the_store_changed():
    seen = live_step(None, ["1"], [3, 3, 10, 20, 1, 5, 7], tick=True).seen
    assert live_step(seen, ["1"], (3, 3, 10, 20, 1, 5, 7), tick=True) == (seen, False)  # tuple or list alike
    for changed in ([4, 4, 12, 20, 2, 5, 7], [3, 3, 10, 25, 0, 0, 0], [3, 3, 10, 20, 1, 9, 8]):
        step = live_step(seen, ["1"], changed, tick=True)
        assert step.changed is True and step.seen["fingerprint"] == changed


def test_no_fingerprint_never_bumps():
    seen = live_step(None, [], None, tick=True).seen
    assert live_step(seen, [], None, tick=True).changed is False
    assert live_step({"experiments": ["1"], "fingerprint": [1]}, ["1"], None, tick=True).changed is False


def test_versions_are_new_values():
    assert next_version(None) == 1
    assert next_version(next_version(None)) == 2


def test_single_picker_keeps_the_users_value_while_offered():
    assert kept_choice("loss", ["loss", "acc"], ["loss", "acc", "lat"], "acc") == "loss"
    assert kept_choice("gone", ["gone"], ["loss"], "loss") == "loss"
    assert kept_choice(None, [], ["loss"], "loss") == "loss"  # metrics appeared: the default objective
    options = [{"label": "a (3)", "value": "a"}, {"label": "b (1)", "value": "b"}]
    assert kept_choice("b", options, options, "a") == "b"  # dict options too


def test_multi_picker_keeps_the_users_choice_and_fills_an_empty_one_only_when_nothing_was_offered():
    assert kept_choice(["loss"], ["loss", "acc"], ["loss", "acc", "lat"], ["acc", "lat"], multi=True) == ["loss"]
    assert kept_choice(["loss", "gone"], ["loss", "gone"], ["loss"], ["x"], multi=True) == ["loss"]
    assert kept_choice([], ["loss"], ["loss", "acc"], ["loss"], multi=True) == []  # emptied by the user: kept
    assert kept_choice([], [], ["loss"], ["loss"], multi=True) == ["loss"]  # nothing was offered before
    assert kept_choice(None, ["loss"], ["loss"], ["loss"], multi=True) == ["loss"]


def test_detail_keeps_the_row_shown_across_a_refresh_only():
    click = {"points": [{"customdata": ["lr"]}]}
    assert detail_click(True, False, click, ["hidden"]) == click
    assert detail_click(False, True, click, ["hidden", "lr"]) == {"points": [{"customdata": ["hidden", "lr"]}]}
    assert detail_click(False, False, click, ["hidden"]) is None  # a new analysis: its most important row
    assert detail_click(False, True, click, None) is None  # nothing shown yet (or no longer in the analysis)


def _trials(statuses, ends):
    runs = {"run_id": [f"r{i}" for i in range(len(statuses))], "status": statuses, "end_time": ends}
    return pd.DataFrame({**runs, "metrics.loss": 0.0, "metrics.acc": 0.0})  # the metrics the space page asks for


def test_ended_state_ignores_running_and_scheduled_runs():
    t = pd.Timestamp("2026-01-01 10:00")
    assert ended_state(_trials([], [])) == (0, "")
    before = ended_state(_trials(["FINISHED", "RUNNING"], [t, pd.NaT]))
    assert before == (1, str(t))
    # A new scheduled run, or a running one logging: no change; a run ending: a change.
    assert ended_state(_trials(["FINISHED", "RUNNING", "SCHEDULED"], [t, pd.NaT, pd.NaT])) == before
    assert ended_state(_trials(["FINISHED", "FAILED"], [t, t + pd.Timedelta("1s")])) != before


def test_space_analysis_is_redone_only_when_a_run_ends():
    """The space page's reports, against a fake context: a live refresh with only running runs changed
    reuses the analysis; an ended run, or another metric, computes it again."""
    t = pd.Timestamp("2026-01-01 10:00")
    state = {"trials": _trials(["FINISHED", "RUNNING"], [t, pd.NaT])}
    calls = []

    class Context:
        def view(self, experiments, searches=None):
            return SimpleNamespace(trials=state["trials"])

        def space_report(self, selection, metric, direction, params, quantile, budget="auto"):
            calls.append((metric, direction, quantile))
            return object()

    reports = SteadyReports(Context())
    sel = {"experiments": ["1"], "searches": []}
    first = reports(sel, "loss", None, None, 1.0)
    assert calls == [("loss", "max", None)]
    state["trials"] = _trials(["FINISHED", "RUNNING", "SCHEDULED"], [t, pd.NaT, pd.NaT])
    assert reports(sel, "loss", None, None, 1.0) is first and len(calls) == 1
    assert reports(sel, "acc", "max", None, 0.5) is not first and calls[-1] == ("acc", "max", 0.5)
    state["trials"] = _trials(["FINISHED", "FINISHED", "SCHEDULED"], [t, t, pd.NaT])
    assert reports(sel, "loss", None, None, 1.0) is not first and len(calls) == 3


def test_one_runs_state_says_what_changed_for_each_caller():
    from trellis.tracking.run_state import runs_state

    t = pd.Timestamp("2026-01-01 10:00")
    running = _trials(["FINISHED", "RUNNING"], [t, pd.NaT])
    started = _trials(["FINISHED", "RUNNING", "RUNNING"], [t, pd.NaT, pd.NaT])
    assert runs_state(running) == (2, 1, str(t)) and runs_state(started) != runs_state(running)  # diagnosis sees it
    assert runs_state(started, ended_only=True) == runs_state(running, ended_only=True)  # a heavy analysis does not
    logged = running.assign(**{"metrics.acc": [0.0, 0.5]})
    assert runs_state(logged, metric="acc") != runs_state(running, metric="acc")  # an analysis of acc does
    assert runs_state(logged, metric="loss") == runs_state(running, metric="loss")  # one of loss does not
