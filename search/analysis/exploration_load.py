"""The reads behind the exploration page: a view's searches as ``SearchData`` (two reads per page, all searches
at once: ``trellis.tracking.evaluations``), then ``_get_page_info``."""

from __future__ import annotations

import pandas as pd

from trellis.search.analysis.exploration import SearchData, config_of, evaluation_steps, pbt_interval, search_kind
from trellis.search.analysis.exploration_info import PageInfo, _get_page_info
from trellis.search.registry import POPULATION
from trellis.tracking.evaluations import read_lineage, read_values_at
from trellis.tracking.reader import RunTable

MAX_SEARCHES = 4  # side by side; more would make each column too narrow to read


def shown_searches(trials: pd.DataFrame, wanted: list[str]) -> tuple[list[str], str]:
    """The searches drawn: those picked (in order), else the largest ones of the view; and a note of any left out."""
    counts = trials["search_id"].value_counts()
    chosen = [s for s in wanted if s in counts.index] or list(counts.index)
    note = ""
    if len(chosen) > MAX_SEARCHES:
        note = f"{len(chosen) - MAX_SEARCHES} more searches not drawn: pick up to {MAX_SEARCHES} in the search picker"
        chosen = chosen[:MAX_SEARCHES]
    return chosen, note


def load_page(
    uri: str,
    table: RunTable,
    trials: pd.DataFrame,
    labels: dict[str, str],
    searches: list[str],
    objective: str,
    direction: str,
) -> PageInfo:
    chosen, note = shown_searches(trials, searches)
    trials = trials[trials["search_id"].isin(chosen)]
    config = table.runs.loc[table.runs["kind"] == "search", ["run_id", "trellis_config"]]
    configs = dict(zip(config["run_id"], config["trellis_config"], strict=True))
    trials = trials.assign(trellis_config=trials["search_id"].map(configs))
    experiments = sorted(set(trials["experiment_id"].astype(str)))
    lineage = read_lineage(uri, experiments, trials["run_id"].tolist(), objective)
    datas = []
    for search in chosen:
        rows = trials[trials["search_id"] == search]
        ids = set(rows["run_id"])
        # the parameters this search varied: a constant (a fixed value) has nothing to show
        params = [p for p in table.params if rows[f"params.{p}"].dropna().astype(str).nunique() > 1]
        datas.append(
            SearchData(
                str(search),
                labels.get(search, str(search)[:8]),
                objective,
                direction,
                rows,
                params,
                set(table.log_params),
                lineage.tags[lineage.tags["run_id"].isin(ids)],
                lineage.rungs[lineage.rungs["run_id"].isin(ids)],
                pd.DataFrame({"run_id": [], "step": [], "value": []}),
                lineage.last_steps[lineage.last_steps["run_id"].isin(ids)],
            )
        )
    steps = set()
    for data in datas:
        kind = search_kind(data)
        steps |= set(
            evaluation_steps(data, kind, pbt_interval(data.trials, config_of(data.trials)) if kind == POPULATION else 1)
        )
    values = read_values_at(uri, experiments, trials["run_id"].tolist(), objective, sorted(steps))
    datas = [d._replace(values=values[values["run_id"].isin(set(d.trials["run_id"]))]) for d in datas]
    return _get_page_info(datas, set(table.log_params), note)
