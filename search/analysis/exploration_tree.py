"""Lineage, hierarchy and the 2-D map of configurations (CHOPT's hierarchy and cluster views), pure.

- **Lineage edges**: a PBT member created by exploit names its parent (``trellis.pbt.parent_trial``, a trial
  number of the same search) and the member it replaced (``trellis.pbt.replaced_trial``). Hyperband and
  BOHB promote a trial *in its own run* (``trellis.rung`` grows), so promotions are rung paths, not edges.
- **Hierarchy**: PBT's family tree of members; Hyperband's brackets with the trials that reached each rung.
- **Projection**: the configurations scaled to [0, 1] per parameter (log parameters in log space, a
  category one-hot at distance 1), projected to 2-D by metric MDS, or by PCA above ``MDS_LIMIT`` trials
  (MDS is quadratic in memory and slow; PCA places every trial, linearly, and the page says so).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from trellis.search.registry import BRACKETED, POPULATION

MDS_LIMIT = 500  # configurations MDS projects; above this PCA does
HIERARCHY_LIMIT = 2000  # PBT members drawn one node each; beyond, generations are counted instead


class LineageInfo(NamedTuple):
    edges: pd.DataFrame  # parent, child (positions in sampling order), generation, replaced (position or -1)
    parent_of: np.ndarray  # per trial position: its PBT parent's position, -1 for none


def _get_lineage_info(trials: pd.DataFrame, run_ids: list[str]) -> LineageInfo:
    """PBT's exploit edges parent -> child from the tags, as positions in ``run_ids`` (sampling order)."""
    n = len(run_ids)
    parent_of = np.full(n, -1, dtype=int)
    empty = pd.DataFrame({"parent": [], "child": [], "generation": [], "replaced": []}, dtype="int64")
    if "pbt_parent" not in trials or trials.empty:
        return LineageInfo(empty, parent_of)
    by_run = trials.set_index("run_id").reindex(run_ids)
    numbers = pd.to_numeric(by_run["trial"], errors="coerce")
    position_of_number = {int(t): i for i, t in enumerate(numbers) if pd.notna(t)}
    parents = pd.to_numeric(by_run["pbt_parent"], errors="coerce").to_numpy(dtype=float)
    generation = pd.to_numeric(by_run.get("pbt_generation"), errors="coerce").to_numpy(dtype=float)
    rows = []
    for child, parent in enumerate(parents):
        if np.isfinite(parent) and int(parent) in position_of_number:
            parent_of[child] = position_of_number[int(parent)]
            g = int(generation[child]) if np.isfinite(generation[child]) else -1
            rows.append((parent_of[child], child, g))
    edges = pd.DataFrame(rows, columns=["parent", "child", "generation"]) if rows else empty.drop(columns="replaced")
    replaced = replaced_positions(trials, run_ids, position_of_number)
    edges["replaced"] = [replaced.get(int(c), -1) for c in edges["child"]]
    return LineageInfo(edges.astype("int64"), parent_of)


def replaced_positions(trials: pd.DataFrame, run_ids: list[str], position_of_number: dict[int, int]) -> dict[int, int]:
    """Child position -> position of the member whose slot it took (``trellis.pbt.replaced_trial``)."""
    if "pbt_replaced" not in trials:
        return {}
    by_run = trials.set_index("run_id").reindex(run_ids)
    out = {}
    for child, value in enumerate(pd.to_numeric(by_run["pbt_replaced"], errors="coerce")):
        if pd.notna(value) and int(value) in position_of_number:
            out[child] = position_of_number[int(value)]
    return out


def ancestors(parent_of: np.ndarray, trial: int) -> list[int]:
    """The trial, its parent, its parent's parent, ... (stops at a cycle, which tags could only fake)."""
    chain, seen = [trial], {trial}
    while 0 <= chain[-1] < len(parent_of) and parent_of[chain[-1]] >= 0 and parent_of[chain[-1]] not in seen:
        chain.append(int(parent_of[chain[-1]]))
        seen.add(chain[-1])
    return chain


# -- hierarchy --------------------------------------------------------------------------------------------


class HierarchyInfo(NamedTuple):
    ids: list[str]
    labels: list[str]
    parents: list[str]
    values: list[float]  # trials under the node (itself included)
    scores: list[float]  # the node's objective (NaN for group nodes)
    note: str


def _get_hierarchy_info(
    root: str, kind: str, lineage: LineageInfo, numbers: np.ndarray, finals: np.ndarray, evaluations: pd.DataFrame
) -> HierarchyInfo:
    """PBT: members under their parent (generation-0 members under the search). Hyperband/BOHB: each bracket
    run, under it the trials that reached each rung (a rung under the one before). Else: nothing."""
    ids, labels, parents, values, scores = [root], [root], [""], [0.0], [float("nan")]
    note = ""
    if kind == POPULATION and len(numbers):
        if len(numbers) > HIERARCHY_LIMIT:
            return HierarchyInfo(ids, labels, parents, values, scores, f"{len(numbers)} members: too many to draw")
        weight = np.ones(len(numbers))
        order = np.argsort([len(ancestors(lineage.parent_of, i)) for i in range(len(numbers))], kind="stable")
        for i in order[::-1]:  # leaves first: each node's value is its subtree's size
            if lineage.parent_of[i] >= 0:
                weight[lineage.parent_of[i]] += weight[i]
        for i in range(len(numbers)):
            parent = lineage.parent_of[i]
            ids.append(f"{root}/t{numbers[i]}")
            labels.append(f"trial {numbers[i]}")
            parents.append(f"{root}/t{numbers[parent]}" if parent >= 0 else root)
            values.append(float(weight[i]))
            scores.append(float(finals[i]))
        values[0] = float(weight[lineage.parent_of < 0].sum())
    elif kind == BRACKETED and len(evaluations):
        groups = evaluations.groupby(["group_start", "group", "rung"], sort=True)["trial"].nunique()
        total = 0.0
        for (start, group, rung), count in groups.items():
            bracket = f"{root}/{int(start)}"
            if bracket not in ids:
                ids.append(bracket)
                labels.append(f"{group} (from iteration {int(start)})")
                parents.append(root)
                values.append(float(count))
                scores.append(float("nan"))
                total += count
            node = f"{bracket}/r{int(rung)}"
            ids.append(node)
            labels.append(f"rung {int(rung)}: {count} trials")
            parents.append(
                f"{bracket}/r{int(rung) - 1}" if rung > 0 and f"{bracket}/r{int(rung) - 1}" in ids else bracket
            )
            values.append(float(count))
            scores.append(float("nan"))
        values[0] = total
    else:
        note = "no lineage: every trial was sampled on its own"
    return HierarchyInfo(ids, labels, parents, values, scores, note)


# -- 2-D projection ---------------------------------------------------------------------------------------


class ProjectionInfo(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    method: str  # "MDS" | "PCA" | ""
    note: str


def scaled_configurations(frame: pd.DataFrame, params: list[str], log_params: set[str]) -> np.ndarray:
    """One row per trial: numeric parameters in [0, 1] (log10 first for log ones; a missing value, an inactive
    conditional parameter, at 0.5), categorical ones one-hot / sqrt(2) (two choices are 1 apart)."""
    columns = []
    for name in params:
        raw = frame[f"params.{name}"] if f"params.{name}" in frame else pd.Series(np.nan, index=frame.index)
        numbers = pd.to_numeric(raw, errors="coerce").astype(float)
        if numbers.notna().sum() == raw.notna().sum() and numbers.notna().any():
            v = numbers.to_numpy()
            if name in log_params:
                v = np.log10(np.where(v > 0, v, np.nan))
            lo, hi = np.nanmin(v), np.nanmax(v)
            v = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
            columns.append(np.where(np.isfinite(v), v, 0.5)[:, None])
        else:
            codes, _ = pd.factorize(raw.astype(object))
            onehot = np.zeros((len(raw), max(codes.max() + 1, 1)))
            onehot[np.arange(len(raw))[codes >= 0], codes[codes >= 0]] = 1 / np.sqrt(2)
            columns.append(onehot)
    return np.hstack(columns) if columns else np.zeros((len(frame), 0))


def _get_projection_info(matrix: np.ndarray, seed: int = 0) -> ProjectionInfo:
    n = len(matrix)
    if n < 3 or matrix.shape[1] == 0:
        return ProjectionInfo(np.zeros(n), np.zeros(n), "", "too few trials or parameters to project")
    if matrix.shape[1] == 1:
        return ProjectionInfo(matrix[:, 0], np.zeros(n), "", "one parameter: shown as it is")
    if n <= MDS_LIMIT:
        from sklearn.manifold import MDS

        mds = MDS(n_components=2, n_init=1, max_iter=200, random_state=seed, normalized_stress="auto")
        with warnings.catch_warnings():  # a square matrix of configurations is still one row per trial
            warnings.simplefilter("ignore", UserWarning)
            points = mds.fit_transform(matrix)
        return ProjectionInfo(points[:, 0], points[:, 1], "MDS", "metric MDS of the scaled configurations")
    from sklearn.decomposition import PCA

    points = PCA(n_components=2, random_state=seed).fit_transform(matrix)
    return ProjectionInfo(
        points[:, 0],
        points[:, 1],
        "PCA",
        f"PCA of the scaled configurations ({n} trials: MDS is used up to {MDS_LIMIT})",
    )
