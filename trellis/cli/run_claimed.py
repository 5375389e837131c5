"""``python -m trellis.cli.run_claimed URI SEARCH_ID start|resume``: what an agent's child process runs.

The agent has claimed the search; this starts it in its scheduled run, or resumes it, with the config
stored on the run (the tracking URI is the agent's, so a store reached under another name still works).
The config is read from the store, so it is checked against the agent's allow-list (passed in the
environment) right before it runs: a config rewritten after the agent's own check runs nothing either.
"""

from __future__ import annotations

import sys
from dataclasses import replace


def main(argv: list[str]) -> int:
    from mlflow import MlflowClient

    from trellis.cli.search_commands import print_result
    from trellis.search.control.agent import refusal, refuse
    from trellis.search.control.policy import ServerPolicy
    from trellis.search.engine.resume import ResumeError, recorded_config
    from trellis.search.engine.runner import SearchRunner
    from trellis.tracking.retry import StoreUnavailable

    uri, search_id, mode = argv
    client = MlflowClient(tracking_uri=uri)
    try:
        config = recorded_config(client, search_id)
        reason = refusal(client, search_id, ServerPolicy.from_env(), config)
        if reason is not None:
            refuse(client, search_id, reason)
            print(f"error: refused: {reason}", file=sys.stderr)
            return 2
        config = replace(config, tracking=replace(config.tracking, uri=uri))
        resume = search_id if mode == "resume" else None
        print(f"search {search_id}: {'resuming' if resume else 'starting'} ({config.name}, {config.algorithm.name})")
        result = SearchRunner(config, resume=resume, adopt=search_id).run()
    except (ResumeError, StoreUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return print_result(config, result)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
