"""The runner's side of the control panel: stop and edit requests read from the search run's tags, and what a
relaunch takes from its parent (warm start, no configuration run twice). A mixin of ``SearchRunner``."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import replace
from typing import Any

from trellis.search.config.origin import parse_queue
from trellis.search.engine import run_tags
from trellis.search.engine.warm_start import config_key, known_results, warm_start_set
from trellis.tracking import schema
from trellis.tracking.writer import MAX_TAG_LEN

log = logging.getLogger(__name__)
STOP_POLL_S = 2.0  # how often the runner looks for stop and edit requests
MAX_DUPLICATE_PROPOSALS = 50  # a relaunch asks again when the sampler proposes what the parent ran
EDITABLE = {"max_trials": int, "max_time_s": float, "workers": int}


def parse_edit(text: str) -> dict[str, Any]:
    """An edit request's JSON to the limits it changes; unknown keys and values that are not positive
    numbers are dropped (the app and the CLI validate before writing, so this only guards the runner)."""
    try:
        raw = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for key, kind in EDITABLE.items():
        value = raw.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            out[key] = kind(value)
    return out


class Steering:
    """Needs the runner's ``client``, ``config``, ``search_id``, ``recorder``, ``progress``, ``executor``,
    ``sampler`` and ``_stop_checked_at``."""

    _parent_results: dict = {}
    _applied_edit: str | None = None
    _applied_queue: str | None = None

    def _stop_requested(self) -> bool:
        """Whether a stop was asked for; applies a new edit request on the way (both every STOP_POLL_S)."""
        now = time.monotonic()
        if now - self._stop_checked_at < STOP_POLL_S:
            return False
        self._stop_checked_at = now
        try:
            tags = self.client.get_run(self.search_id).data.tags
        except Exception as exc:  # a store hiccup must not end the search
            log.warning("could not check for stop or edit requests: %s", exc)
            return False
        edit = tags.get(schema.EDIT_REQUESTED)
        if edit and edit != self._applied_edit:
            self._applied_edit = edit
            self._apply_edit(parse_edit(edit), json.loads(tags.get(schema.EDITS, "[]") or "[]"))
        self._apply_queue(tags)
        return schema.STOP_REQUESTED in tags

    def _apply_queue_at_start(self) -> None:
        """A children search reordered or trimmed while it waited for an agent starts in that order."""
        if self.config.origin is None:
            return
        try:
            self._apply_queue(self.client.get_run(self.search_id).data.tags)
        except Exception as exc:  # a store hiccup: the next poll applies it
            log.warning("could not read the children's queue: %s", exc)

    def _apply_queue(self, tags: dict[str, str]) -> None:
        """The models page's order for an ablation's or variation's waiting children (those left out: cancelled)."""
        text, origin = tags.get(schema.ORIGIN_QUEUE), self.config.origin
        requeue = getattr(self.sampler, "requeue", None)
        if not text or text == self._applied_queue or origin is None or requeue is None:
            return
        self._applied_queue = text
        order = parse_queue(text, len(origin.changes))
        if order is None:
            return
        ran = [*getattr(self, "_past", {}).values(), *self.trials.values()]  # a resumed search's past trials too
        done = {t.params.get(origin.param) for t in ran}
        dropped = requeue(origin.param, [origin.changes[i][0] for i in order], done)
        changes = dict(origin.changes)
        cancelled = json.loads(tags.get(schema.ORIGIN_CANCELLED, "[]") or "[]")
        cancelled += [c for c in (changes.get(value, str(value)[:80]) for value in dropped) if c not in cancelled]
        self.recorder.update_search({schema.ORIGIN_CANCELLED: json.dumps(cancelled)[:MAX_TAG_LEN]})
        log.info("search %s: children requeued, %d cancelled", self.search_id, len(dropped))

    def _apply_edit(self, edit: dict[str, Any], history: list) -> None:
        if not edit:
            return
        cfg = self.config
        termination = replace(cfg.termination, **{k: v for k, v in edit.items() if k in ("max_trials", "max_time_s")})
        executor = replace(cfg.executor, workers=edit.get("workers", cfg.executor.workers))
        self.config = replace(cfg, termination=termination, executor=executor)
        if "max_trials" in edit:
            self.progress.limit = edit["max_trials"]
        if "workers" in edit:
            self.executor.resize(edit["workers"])
        tags = {schema.EDITS: json.dumps([*history, {**edit, "at": round(time.time())}])}
        config_json = json.dumps(self.config.to_dict(), default=str)
        if len(config_json) <= MAX_TAG_LEN:  # a resume goes on with the edited limits
            tags[schema.CONFIG_JSON] = config_json
        self.recorder.update_search(tags)
        log.info("search %s edited: %s", self.search_id, edit)

    # -- relaunch ---------------------------------------------------------------------------------
    def _learn_from_parent(self) -> None:
        """A relaunch reads its parent's trials once: to warm-start the sampler (when asked) and to never
        propose a configuration the parent already ran."""
        parent = self.config.relaunched_from
        if not parent:
            return
        from trellis.search.engine.resume import past_trials

        try:
            past = past_trials(self.client, parent, self.config)
        except Exception as exc:  # the parent was deleted: the relaunch runs without it
            log.warning("could not read the parent search %s: %s", parent, exc)
            return
        self._parent_results = known_results(self.config.space, past)
        if not self.config.warm_start:
            return
        chosen = warm_start_set(self.config.space, past)
        for i, trial in enumerate(chosen):
            values = list(trial.values) if trial.value is not None and None not in trial.values else None
            self._tell(-1 - i, trial.params, trial.value, values, trial.end_reason, trial.reached or None)
        self.recorder.update_search({schema.WARM_START_TRIALS: len(chosen)})

    def _propose(self, number: int, budget: int | None) -> dict[str, Any] | None:
        """The sampler's next configuration; one the parent already ran is told to the sampler with the
        parent's result and not run again."""
        params = self.sampler.propose(number, budget)
        for _ in range(MAX_DUPLICATE_PROPOSALS):
            known = self._parent_results.get(config_key(self.config.space, params)) if params else None
            if known is None:
                return params
            state = run_tags.sampler_state(known.end_reason)
            self.sampler.observe(number, params, known.value, state, budget=known.reached or None)
            params = self.sampler.propose(number, budget)
        return params
