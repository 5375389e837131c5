"""What the runner keeps of each trial, and what a search returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trellis.search.engine.progress import Progress


@dataclass
class TrialRecord:
    number: int
    params: dict[str, Any]
    run_id: str
    key: str
    worker: str
    queued_at: float
    started_at: float
    budget_stop: int
    last_step: int = 0
    value: float | None = None
    values: dict[str, float] = field(default_factory=dict)  # the last value of each objective (several objectives)
    metric_keys: set[str] = field(default_factory=set)
    segment: int = 0  # how many times the trial was continued (Hyperband promotions)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SearchResult:
    search_id: str
    experiment_id: str
    tracking_uri: str
    state: str  # completed | killed | failed
    stop_reason: str
    progress: Progress
    best_params: dict[str, Any] | None = None
    trials: list[TrialRecord] = field(default_factory=list)
