"""Which search a run is from, on every row and legend entry; run names unique in a view."""

import pandas as pd

from trellis.app.context import search_labels
from trellis.layouts.choices import table_metrics
from trellis.layouts.curves import curves_info
from trellis.layouts.labels import run_labels
from trellis.layouts.overview import selected_rows


def two_searches() -> pd.DataFrame:
    """Two Trellis searches in one experiment, both with a trial-0004; the search name is on the parents only."""
    rows = []
    for sid, name in (("aaaaaa111", "quad-random"), ("bbbbbb222", "quad-tpe")):
        rows.append({"run_id": sid, "run_name": name, "search_id": sid, "search_name": name, "kind": "search"})
        for n in (3, 4):
            rows.append(
                {"run_id": f"{sid}-{n}", "run_name": f"trial-000{n}", "search_id": sid, "search_name": None}
                | {"kind": "trial"}
            )
    frame = pd.DataFrame(rows)
    frame["experiment"], frame["experiment_id"], frame["status"] = "browser", "1", "FINISHED"
    frame["metrics.loss"] = 1.0
    return frame


def test_every_trial_row_names_its_search_and_run_labels_are_unique():
    runs = two_searches()
    labels = search_labels(runs)
    ids = ["aaaaaa111-3", "aaaaaa111-4", "bbbbbb222-4"]
    rows, _ = selected_rows(runs, ids, [], ["loss"], lambda r: "http://x", labels)
    assert [r["search"] for r in rows] == ["quad-random · aaaaaa", "quad-random · aaaaaa", "quad-tpe · bbbbbb"]
    names = [r["run"].split("]")[0].lstrip("[") for r in rows]
    # one form for all once two searches' runs share a name (the curves legend never mixes the two)
    assert names == ["quad-random · aaaaaa / trial-0003", "quad-random · aaaaaa / trial-0004",
                     "quad-tpe · bbbbbb / trial-0004"]  # fmt: skip


def test_a_remaining_tie_is_broken_by_the_run_id():
    runs = pd.DataFrame({"run_id": ["r1aaaa", "r2bbbb"], "run_name": ["t", "t"], "search_id": ["s", "s"]})
    assert run_labels(runs, {"s": "same"}) == {"r1aaaa": "same / t · r1aaaa", "r2bbbb": "same / t · r2bbbb"}
    unnamed = pd.DataFrame({"run_id": ["abcdefghij"], "run_name": [None], "search_id": ["s"]})
    assert run_labels(unnamed, {}) == {"abcdefghij": "abcdefgh"}


def test_curves_legend_names_are_unique_across_searches():
    runs = two_searches()
    runs = runs[runs["kind"] == "trial"]
    start = pd.Timestamp("2024-01-01", tz="UTC")
    runs = runs.assign(start_time=start)
    hist = pd.DataFrame(
        {
            "run_id": runs["run_id"].tolist(),
            "key": "loss",
            "step": 1,
            "timestamp": int(start.value // 1e6),
            "value": 0.5,
        }
    )
    info = curves_info(hist, runs, ["loss"], search_labels=search_labels(two_searches()))
    legend = [c.label for c in info.curves["loss"]]
    assert len(set(legend)) == len(legend) == 4
    assert "quad-tpe · bbbbbb / trial-0004" in legend


def test_internal_metrics_stay_out_of_tables():
    assert table_metrics(["trellis.rung", "acc", "loss"], "loss") == ["loss", "acc"]
    assert table_metrics(["trellis.best.loss", "acc"], None) == ["acc"]


def test_a_run_name_made_to_look_like_a_link_stays_text():
    """A run named ``x](https://evil.example/steal) [y`` must not become a working link (issue 25)."""
    import re

    runs = two_searches()
    runs.loc[runs["run_id"] == "aaaaaa111-3", "run_name"] = "x](https://evil.example/steal) [y"
    rows, _ = selected_rows(
        runs, ["aaaaaa111-3"], [], ["loss"], lambda r: "http://mlflow/#/runs/(1)", search_labels(runs)
    )
    cell = rows[0]["run"]
    unescaped_brackets = re.findall(r"(?<!\\)[\[\]()]", cell)
    assert unescaped_brackets == ["[", "]", "(", ")"]  # the one link Trellis made, and nothing else
    assert cell.endswith("(http://mlflow/#/runs/%281%29)") and "evil.example" in cell


def test_parameters_show_four_significant_digits_not_seventeen():
    runs = two_searches()
    runs["params.lr"] = "0.0012345678901234567"
    runs["params.units"] = "128"
    rows, _ = selected_rows(runs, ["aaaaaa111-3"], ["lr", "units"], ["loss"], lambda r: "http://x", search_labels(runs))
    assert rows[0]["lr"] == "0.001235" and rows[0]["units"] == "128"


def test_a_search_keeps_its_colour_as_others_appear_and_on_every_page():
    from trellis.layouts.style import PALETTE, search_colors

    ids = [f"{i:032x}" for i in range(0, 4000, 397)]  # ten search ids
    before = search_colors(ids[:3])
    after = search_colors(ids)  # seven searches appear live
    kept = [s for s in ids[:3] if after[s] == before[s]]
    assert len(kept) >= 2  # only a newcomer that wants the same colour with a smaller id can move one
    assert search_colors([ids[0]])[ids[0]] == search_colors(ids[:1] + ids[5:])[ids[0]] or ids[0] not in kept
    assert len(set(after.values())) == len(ids) and set(after.values()) <= set(PALETTE)  # distinct in a view
