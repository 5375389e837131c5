"""A search diagnosis' fix, one click from the relaunch form: the finding links to ``/control`` with its config
change; the link is checked like any URL value; the control page picks the search and fills the form with it."""

from __future__ import annotations

import json

import pytest

from tests.test_control_page import post, served  # noqa: F401 (the fixture)
from trellis.layouts.diagnosis import FindingLinks, finding_item
from trellis.search.analysis.diagnosis import Finding
from trellis.search.control.fixes import FixError, apply_fix, decode_fix, encode_fix


def test_a_fix_goes_through_a_link_and_back_and_only_into_the_sections_a_finding_changes():
    change = {"space.lr.high": 0.3, "budget.min": 3, "algorithm.quantile": 0.2, "space.width": 64}
    assert decode_fix(encode_fix(change)) == change
    config = {"space": {"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}, "width": {"type": "int"}}}
    fixed = apply_fix(config, change)
    assert fixed["space"]["lr"]["high"] == 0.3 and fixed["budget"] == {"min": 3}
    assert fixed["space"]["width"] == {"type": "fixed", "value": 64} and config["space"]["lr"]["high"] == 0.1
    for bad, reason in [
        ({"trial.function": "os:system"}, "not a key the diagnosis changes"),
        ({"tracking.uri": "sqlite:///x.db"}, "not a key the diagnosis changes"),
        ({"space": 1}, "not a key the diagnosis changes"),
        ({"space.lr.high": [1, 2]}, "a number, a word or null"),
    ]:
        with pytest.raises(FixError, match=reason):
            decode_fix(encode_fix(bad))
    for text in ("", "@@@", "x" * 3000, encode_fix({})[:0] + "bnVsbA"):  # the last: base64 of "null"
        with pytest.raises(FixError):
            decode_fix(text)


def test_a_finding_with_a_config_change_links_to_the_relaunch_form():
    finding = Finding("edge", "s" * 32, "warning", "x at its edge", "evidence", "widen", {"space.x.high": 2.0})
    links = FindingLinks({}, {}, {"s" * 32: "7"})
    item = json.dumps(finding_item(finding, links, 0).to_plotly_json(), default=lambda o: o.to_plotly_json())
    href = f"/control?exp=7&search={'s' * 32}&fix={encode_fix({'space.x.high': 2.0})}"
    assert href in item and "Relaunch with this fix" in item
    without = finding_item(finding, FindingLinks({}, {}), 0)  # no experiment known: the change, no link
    assert "Relaunch with this fix" not in json.dumps(without.to_plotly_json(), default=lambda o: o.to_plotly_json())


def test_a_bad_fix_in_a_link_is_refused_with_a_message(served):  # noqa: F811
    s = served
    url = f"/control?exp={s.search.experiment_id}&search={s.search.search_id}&fix=bm90IGpzb24"
    answer = s.http.get(url)
    assert answer.status_code == 400 and b"fix: not a fix written by the search diagnosis" in answer.data


def test_the_control_page_picks_the_linked_search_and_fills_the_form_with_its_fix(served):  # noqa: F811
    s = served
    sid, exp = s.search.search_id, s.search.experiment_id
    query = f"?exp={exp}&search={sid}&fix={encode_fix({'space.x.high': 2.5, 'space.y': 0.25})}"
    assert s.http.get("/control" + query).status_code == 200
    rows = [{"id": sid, "status": "finished"}]
    picked = post(
        s.http, s.deps, "ctl-table.data", {"ctl-table.data": rows, "url.search": query, "ctl-pick.value": None}
    )
    assert picked["ctl-pick"]["value"] == sid
    again = post(s.http, s.deps, "ctl-table.data", {"ctl-table.data": rows, "url.search": query, "ctl-pick.value": sid})
    assert again == {}  # a pick the user made is never overridden
    selection = {"experiments": [exp], "searches": []}
    filled = post(
        s.http,
        s.deps,
        "ctl-pick.value",
        {"ctl-pick.value": sid, "selection.data": selection, "url.search": query},
        output="ctl-name.value",
    )
    params = filled["ctl-params"]["data"]
    x = next(r for r in params if r["name"] == "x")
    y = next(r for r in params if r["name"] == "y")
    assert float(x["high"]) == 2.5 and y["action"] == "fix" and float(y["value"]) == 0.25
    assert "With the search diagnosis' fix: space.x.high: 2.5" in json.dumps(filled["ctl-parent-note"])
    plain = post(
        s.http,
        s.deps,
        "ctl-pick.value",
        {"ctl-pick.value": sid, "selection.data": selection, "url.search": f"?exp={exp}"},
        output="ctl-name.value",
    )
    assert float(next(r for r in plain["ctl-params"]["data"] if r["name"] == "x")["high"]) == 1.0
