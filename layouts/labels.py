"""Readable, unique names for runs in a view: a run's name, with its search's label where names collide."""

from __future__ import annotations

import pandas as pd


def run_labels(runs: pd.DataFrame, search_labels: dict[str, str]) -> dict[str, str]:
    """run id -> label, unique among ``runs``.

    Runs keep their names (an id's start without one) while no two runs shown share one; when two searches'
    runs are named alike (``trial-0004``), every run is named ``<search label> / trial-0004`` (one form in
    a legend, never a mix); the run id's start breaks a tie that remains (two searches with one label).
    """
    if runs.empty:
        return {}
    ids = runs["run_id"].astype(str).tolist()
    names = [str(n) if isinstance(n, str) and n else rid[:8] for n, rid in zip(runs["run_name"], ids)]
    searches = [search_labels.get(str(s), str(s)[:8]) for s in runs["search_id"]]
    labels = pd.Series(names, index=ids)
    if labels.duplicated().any():
        labels = pd.Series([f"{s} / {n}" for s, n in zip(searches, names)], index=ids)
    taken = labels.duplicated(keep=False)
    labels[taken] = [f"{lab} · {rid[:6]}" for lab, rid in zip(labels[taken], labels.index[taken])]
    return labels.to_dict()


def search_label(row, search_labels: dict[str, str]) -> str:
    """The search a run belongs to, as the search picker names it."""
    return search_labels.get(str(row["search_id"])) or str(row.get("search_name") or row["experiment"])


def long_value_tooltips(rows: list[dict], limit: int = 30) -> list[dict]:
    """A DataTable's ``tooltip_data``: the full text of each cell too long to show (a 300-character value)."""
    return [
        {
            k: {"value": v, "type": "text"}
            for k, v in row.items()
            if isinstance(v, str) and len(v) > limit and k != "run"
        }
        for row in rows
    ]


def rerun_column(
    rows: list[dict], columns: list[dict], runs: pd.DataFrame, tracking_uri: str
) -> tuple[list[dict], list[dict]]:
    """A table of runs with each Trellis trial's command to run it again (``trellis rerun``); other runs get
    none. The store's password, if its URI holds one, is shown as ``***``."""
    from trellis.tracking.cache import shown_url

    trials = set(runs.loc[runs["kind"] == "trial", "run_id"]) if "kind" in runs else set()
    if not any(row.get("run_id") in trials for row in rows):
        return rows, columns
    uri = shown_url(tracking_uri)
    out = [
        {**row, "rerun": f"trellis rerun {row['run_id']} --tracking-uri {uri}" if row.get("run_id") in trials else None}
        for row in rows
    ]
    return out, [*columns, {"name": "re-run", "id": "rerun"}]


MARKDOWN_SPECIALS = set("\\`*_{}[]()<>#!|~")


def markdown_text(text: str) -> str:
    """Text from a run (its name, a tag) as literal markdown: every character markdown could read as syntax
    is escaped, so a name such as ``x](https://evil.example) [y`` stays text, never a link."""
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in str(text)).replace("\n", " ")


def markdown_link(label: str, url: str) -> str:
    """A link whose label is text from a run (escaped) and whose URL is Trellis' own (its parentheses and
    spaces percent-encoded, so the link cannot be cut short)."""
    safe = str(url).replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
    return f"[{markdown_text(label)}]({safe})"


def short_number(value) -> str:
    """A parameter as a table shows it: a float with 4 significant digits (not 17), anything else as it is."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if not value.strip().lstrip("-").isdigit() and number == number and abs(number) not in (float("inf"),):
            return f"{number:.4g}"
        return value
    if isinstance(value, float):
        return f"{value:.4g}"
    return value
