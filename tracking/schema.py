"""Names of everything Trellis writes to MLflow. ``docs/mlflow-schema.md`` explains each one.

Every view in the app must be computable from MLflow alone, so these names are a public contract:
add, never rename.
"""

from __future__ import annotations

from enum import StrEnum

SCHEMA_VERSION = "1"

# MLflow's own tags that Trellis sets.
MLFLOW_PARENT_RUN = "mlflow.parentRunId"
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_SOURCE_NAME = "mlflow.source.name"

PREFIX = "trellis."
# Both kinds of run.
TYPE = "trellis.type"  # "search" | "trial"
SEARCH_ID = "trellis.search_id"  # the search (parent) run's id
SCHEMA = "trellis.schema"
ALGORITHM = "trellis.algorithm"
OBJECTIVE = "trellis.objective"  # metric name
DIRECTION = "trellis.direction"  # "max" | "min"

# Search (parent) runs.
SEARCH_NAME = "trellis.search_name"
SEARCH_STATE = "trellis.state"  # running | completed | killed | failed
SEARCH_STOP_REASON = "trellis.stop_reason"  # max_trials | max_time | threshold | exhausted | interrupted
RELAUNCHED_FROM = "trellis.relaunched_from"  # search id this search was relaunched from
RECORD = "trellis.record"  # comma-separated extra metrics the search promised to record
CONFIG_ARTIFACT = "trellis/search_config.yaml"
CONFIG_JSON = "trellis.config"  # the normalised config as JSON (when short enough for a tag)
BEST_METRIC_PREFIX = "best_"  # parent metric best_<objective>, step = number of ended trials
N_TRIALS = "trellis.n_trials"
N_COMPLETED = "trellis.n_completed"
N_FAILED = "trellis.n_failed"

# Trial (child) runs.
TRIAL_NUMBER = "trellis.trial"  # sampling order, 0-based
BUDGET_RESOURCE = "trellis.budget.resource"  # e.g. epochs; metric steps are in this unit
BUDGET_MAX = "trellis.budget.max"
BUDGET_REACHED = "trellis.budget.reached"
END_REASON = "trellis.end_reason"
ERROR = "trellis.error"  # one-line reason of a failure or kill
STDERR_ARTIFACT = "trellis/stderr_tail.txt"
TRIAL_ARTIFACTS = "trial"  # the files a trial left in its artifact folder (search.trial.ARTIFACTS_FOLDER)
WORKER = "trellis.worker"
GPU = "trellis.gpu"  # the GPU ids the trial ran on (its CUDA_VISIBLE_DEVICES, comma-separated); absent without GPUs
QUEUED_AT = "trellis.time.queued"  # unix seconds
STARTED_AT = "trellis.time.started"
ENDED_AT = "trellis.time.ended"
DURATION = "trellis.time.duration_s"
CHECKPOINT = "trellis.checkpoint"
MISSING_METRICS = "trellis.missing_metrics"  # metrics named in `record` that a completed trial never logged

# Reserved for budgeted and population algorithms (written by them, read by the views).
BRACKET = "trellis.bracket"
RUNG = "trellis.rung"
STOPPED_AT_RUNG = "trellis.stopped_at_rung"
PBT_PARENT = "trellis.pbt.parent_trial"
PBT_GENERATION = "trellis.pbt.generation"
MODEL_BASED = "trellis.model_based"  # BOHB: "true" when its model proposed the configuration, not the prior
PBT_REPLACED = "trellis.pbt.replaced_trial"  # on a member created by exploit: the trial whose slot it took
RETRY_OF = "trellis.retry_of"  # `trellis search resume`: the interrupted trial this one runs again
# unix seconds an agent started a submitted search (MLflow's start_time is when it was submitted)
SEARCH_STARTED = "trellis.search_started"
OBJECTIVES = "trellis.objectives"  # on a search: JSON list of {metric, direction}, in the user's order of priority
PARETO_RANK = "trellis.pareto_rank"  # on a completed trial of a multi-objective search: 1 = non-dominated
PARETO_SIZE = "trellis.pareto_size"  # on a multi-objective search at its end: how many trials are non-dominated
HEARTBEAT = "trellis.heartbeat"  # on a running search: when its runner last said it is alive (unix seconds)
RUNNER = "trellis.runner"  # on a running search: host and pid of the process running it
RETRIED_BY = "trellis.retried_by"  # on the interrupted trial: the number of the trial that ran it again
STOP_REQUESTED = "trellis.stop_requested"  # on a search run: `trellis search stop` asks the runner to stop
RESUMED_FROM = "trellis.resumed_from"

# Architecture searches (config key ``origin``): the model an ablation's or variation's children come from.
ORIGIN_MODEL = "trellis.origin.model"  # on the search and its trials: the parent model's run id
ORIGIN_KIND = "trellis.origin.kind"  # on the search: ablation | variation
ORIGIN_CHANGE = "trellis.origin.change"  # on a trial: what changed from the parent ("removed dense(64) at 2")
ORIGIN_QUEUE = "trellis.origin.queue"  # on a children search: the order its waiting children are to train in
# (JSON list of their positions in the config's origin.changes), written by the models page; one left out is
# cancelled
ORIGIN_CANCELLED = "trellis.origin.cancelled"  # on a children search: JSON list of the changes cancelled

# The control panel and agents (docs/mlflow-schema.md, "Launching from the app").
LAUNCHED_BY = "trellis.launched_by"  # on a search run: the signed-in user (or "cli"/"anonymous") who launched it
CLAIM = "trellis.claim"  # on a search run an agent runs: "none" while waiting, then the claiming agent's token
AGENT = "trellis.agent"  # on a search run: the agent (host:pid) that runs or ran it
RESUME_REQUESTED = "trellis.resume_requested"  # on a stopped or orphaned search: an agent should resume it
EDIT_REQUESTED = "trellis.edit_requested"  # JSON of new limits (max_trials, max_time_s, workers) for the runner
EDITS = "trellis.edits"  # JSON list of the edits the runner applied, each with its unix time
WARM_START_TRIALS = "trellis.warm_start_trials"  # how many of the parent's trials a relaunch learned from
UNCLAIMED = "none"

# Reproducibility (docs/mlflow-schema.md, "Reproducibility"): on every trial run.
SEED = "trellis.seed"  # trial: the seed it was given (ctx.seed); search: the search seed trials derive theirs from
CODE_COMMIT = "trellis.code.commit"  # git commit of the repository holding the trial's module or script
CODE_DIRTY = "trellis.code.dirty"  # "true" when that repository had uncommitted changes to tracked files
CODE_REPO = "trellis.code.repo"  # that repository's top folder
CODE_FILE = "trellis.code.file"  # the trial's module file or script
CODE_SHA256 = "trellis.code.sha256"  # sha256 of that file
VERSION_PREFIX = "trellis.version."  # + python, torch, numpy, scikit-learn, mlflow, trellis
HW_GPU = "trellis.hw.gpu"  # GPU names the search's host shows (comma-separated), absent without CUDA
HW_CPUS = "trellis.hw.cpus"  # CPU count of the search's host
RERUN_OF = "trellis.rerun_of"  # `trellis rerun`: the trial run this run reproduces
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_GIT_BRANCH = "mlflow.source.git.branch"
MLFLOW_GIT_REPO_URL = "mlflow.source.git.repoURL"
MLFLOW_GIT_DIRTY = "mlflow.source.git.dirty"


class EndReason(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"
    EARLY_STOPPED = "early_stopped"
    PRUNED = "pruned"
    RESUMED = "resumed"
    EXPLOITED = "exploited"  # a PBT member replaced by a perturbed copy of a better one


class SearchState(StrEnum):
    """The ``trellis.search_state`` of a search run."""

    SCHEDULED = "scheduled"  # launched from the app, waiting for an agent
    RUNNING = "running"
    COMPLETED = "completed"
    KILLED = "killed"
    FAILED = "failed"


# MLflow run status for each way a trial ends.
STATUS_FOR_REASON = {
    EndReason.COMPLETED: "FINISHED",
    EndReason.EARLY_STOPPED: "FINISHED",
    EndReason.PRUNED: "FINISHED",
    EndReason.RESUMED: "FINISHED",
    EndReason.EXPLOITED: "FINISHED",
    EndReason.FAILED: "FAILED",
    EndReason.KILLED: "KILLED",
}
