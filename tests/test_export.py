"""CSV export: the selection when there is one, else every run shown; integer parameters as integers."""

import io
import json

import pandas as pd

from trellis.layouts.overview import export_runs


def runs() -> pd.DataFrame:
    config = json.dumps({"space": {"lr": {"type": "float", "low": 1.0, "high": 3.0}}})
    return pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "params.units": [64.0, 128.0, float("nan")],
            "params.lr": [1.0, 2.0, 3.0],  # recorded as float: stays 1.0
            "params.dropout": [0.1, 0.25, 0.5],
            "metrics.loss": [0.3, 0.2, 0.1],
            "metrics.trellis.rung": [0.0, 1.0, 1.0],
            "trellis_config": [config, config, config],
        }
    )


def test_export_holds_the_selection_else_all_shown_runs():
    shown = ["a", "b", "c"]
    assert export_runs(runs(), shown, ["b"])["run_id"].tolist() == ["b"]
    assert export_runs(runs(), shown, [])["run_id"].tolist() == shown
    assert export_runs(runs(), ["a", "b"], ["c"])["run_id"].tolist() == ["a", "b"]  # selection outside the view


def test_export_writes_integer_params_as_integers_and_leaves_internal_columns_out():
    frame = export_runs(runs(), ["a", "b", "c"], None)
    text = frame.to_csv(index=False)
    back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert back["params.units"].tolist() == ["64", "128", ""]
    assert back["params.lr"].tolist() == ["1.0", "2.0", "3.0"]
    assert back["params.dropout"].tolist() == ["0.1", "0.25", "0.5"]
    assert "metrics.trellis.rung" not in frame and "trellis_config" not in frame


def test_the_counts_card_leaves_out_what_the_histogram_leaves_out():
    from trellis.layouts.overview import counts_info, distribution_info, distribution_plot, left_out

    trials = pd.DataFrame(
        {
            "run_id": list("abcd"),
            "search_id": "s",
            "status": "FINISHED",
            "metrics.acc": [0.5, float("nan"), float("inf"), 0.7],
            "metrics.loss": [0.1, 0.2, 0.3, float("nan")],  # d never logged loss
        }
    )
    skipped = {"deleted runs": 1, "non-finite acc": 7}  # the reader's count is store-wide, not this view's
    out = left_out(trials, ["acc", "loss", "acc"], skipped)
    assert out == {"deleted runs": 1, "without a finite acc": 2, "without a finite loss": 1}
    for metric in ("acc", "loss"):
        info = distribution_info(trials, metric, {})
        assert info.dropped == out[f"without a finite {metric}"]
        assert (
            f"({info.dropped} without a finite {metric} left out)"
            in distribution_plot(info)["layout"]["xaxis"]["title"]["text"]
        )
    assert counts_info(trials, "acc", "max", out).skipped == out
    clean = trials.assign(**{"metrics.acc": 0.5})
    assert left_out(clean, ["acc"], {}) == {}  # "nothing" only when the plots leave nothing out


def test_text_a_spreadsheet_would_run_is_escaped():
    import pandas as pd

    from trellis.layouts.overview import export_frame

    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "run_name": ['=HYPERLINK("http://x","y")', "@SUM(A1:A9)", "+cmd|' /C calc'!A0", "plain"],
            "params.act": ["-0.5", "-1+2", "\tx", "relu"],
        }
    )
    out = export_frame(runs)
    escaped = ['\'=HYPERLINK("http://x","y")', "'@SUM(A1:A9)", "'+cmd|' /C calc'!A0", "plain"]
    assert out["run_name"].tolist() == escaped
    assert out["params.act"].tolist() == ["-0.5", "'-1+2", "'\tx", "relu"]
