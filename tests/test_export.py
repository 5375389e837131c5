"""CSV export: the selection when there is one, else every run shown; integer parameters as integers."""

import io
import json

import pandas as pd

from layouts.overview import export_runs


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
