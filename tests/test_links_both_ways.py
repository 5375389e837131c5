"""Links from MLflow into the app: with the app's public URL set, every run a search writes has an MLflow
description (the run note) linking its Trellis views, and ``trellis link`` adds one to a foreign experiment."""

import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient

from tests.conftest import ROOT, child_runs
from trellis.app.factory import create_app
from trellis.cli import main
from trellis.search.engine.runner import run_search
from trellis.tracking.links import MLFLOW_NOTE, NOTE_PREFIX, PUBLIC_URL_ENV, trellis_note_line, with_trellis_note

APP = "https://trellis.example.org/team"
LINK = r"\[([a-z ]+)\]\(([^)]+)\)"


def links(note: str) -> dict[str, str]:
    import re

    lines = [line for line in note.splitlines() if line.startswith(NOTE_PREFIX)]
    assert len(lines) == 1, note
    return dict(re.findall(LINK, lines[0]))


def answers(app, url: str) -> int:
    """The status the app gives the link's path and query (the public URL's host and prefix stripped)."""
    assert url.startswith(APP)
    parts = urlsplit(url[len(APP) :] or "/")
    return app.server.test_client().get(parts.path or "/", query_string=parts.query).status_code


def test_every_run_of_a_search_links_its_views_in_the_app(make_config, client, store, monkeypatch):
    monkeypatch.delenv(PUBLIC_URL_ENV, raising=False)
    config = make_config(
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        trial={"function": "trellis.examples.synthetic:crashy"},
        termination={"max_trials": 4},
        tracking={"uri": store, "experiment": "linked", "app_url": APP},
    )
    result = run_search(config)
    search = client.get_run(result.search_id)
    exp = search.info.experiment_id
    runs = [search, *child_runs(client, result.search_id)]
    assert len(runs) == 5 and {r.info.status for r in runs[1:]} == {"FINISHED", "FAILED"}
    for run in runs:  # failed trials too
        assert links(run.data.tags[MLFLOW_NOTE]) == {
            "overview": f"{APP}/?exp={exp}&search={result.search_id}",
            "search space": f"{APP}/space?exp={exp}&search={result.search_id}",
            "learning curves": f"{APP}/curves?exp={exp}&search={result.search_id}",
        }
    app = create_app(store)
    assert {answers(app, url) for url in links(search.data.tags[MLFLOW_NOTE]).values()} == {200}
    assert answers(app, f"{APP}/space?exp={exp}&search=not-an-id") == 400  # the check is real


def test_the_public_url_comes_from_the_environment_and_nothing_is_written_without_one(
    make_config, client, store, monkeypatch
):
    monkeypatch.setenv(PUBLIC_URL_ENV, "http://127.0.0.1:8050/")
    with_env = run_search(make_config(termination={"max_trials": 2}, tracking={"uri": store, "experiment": "env"}))
    note = client.get_run(with_env.search_id).data.tags[MLFLOW_NOTE]
    assert links(note)["overview"].startswith("http://127.0.0.1:8050/?exp=")
    monkeypatch.setenv(PUBLIC_URL_ENV, "not a url")  # a bad value: no broken links, the search still runs
    bad = run_search(make_config(termination={"max_trials": 2}, tracking={"uri": store, "experiment": "bad"}))
    monkeypatch.delenv(PUBLIC_URL_ENV)
    plain = run_search(make_config(termination={"max_trials": 2}, tracking={"uri": store, "experiment": "plain"}))
    for result in (bad, plain):
        assert result.state == "completed"
        for run in [client.get_run(result.search_id), *child_runs(client, result.search_id)]:
            assert MLFLOW_NOTE not in run.data.tags


def test_a_bad_app_url_in_a_config_is_refused(make_config):
    from trellis.search.config import ConfigError

    with pytest.raises(ConfigError, match="tracking.app_url"):
        make_config(tracking={"app_url": "trellis.example.org"})


def test_a_note_keeps_its_text_and_its_link_is_replaced_not_added():
    line = trellis_note_line(APP, "3", "abc")
    once = with_trellis_note("Owner: ana.\n\nBaseline runs.\n", line)
    assert once == f"Owner: ana.\n\nBaseline runs.\n\n{line}"
    assert with_trellis_note(once, line) == once
    moved = trellis_note_line("http://elsewhere:8050", "3", "abc")
    assert with_trellis_note(once, moved) == f"Owner: ana.\n\nBaseline runs.\n\n{moved}"
    assert with_trellis_note(None, line) == with_trellis_note("", line) == line


def test_trellis_link_adds_one_link_to_a_foreign_experiment(store, capsys, monkeypatch):
    monkeypatch.delenv(PUBLIC_URL_ENV, raising=False)
    client = MlflowClient(tracking_uri=store)
    exp = client.create_experiment("sklearn-grid")
    client.set_experiment_tag(exp, MLFLOW_NOTE, "Logged by autolog.\nDo not delete.")
    client.create_run(exp)
    args = ["link", "--experiment", "sklearn-grid", "--tracking-uri", store, "--app-url", APP]
    assert main(args) == 0 and "now links" in capsys.readouterr().out
    monkeypatch.setenv(PUBLIC_URL_ENV, APP)
    assert main(args[:-2]) == 0 and "already links" in capsys.readouterr().out  # the URL from the environment
    note = client.get_experiment(exp).tags[MLFLOW_NOTE]
    assert note.startswith("Logged by autolog.\nDo not delete.\n\n")
    assert links(note) == {
        "overview": f"{APP}/?exp={exp}",
        "search space": f"{APP}/space?exp={exp}",
        "learning curves": f"{APP}/curves?exp={exp}",
    }
    assert {answers(create_app(store), url) for url in links(note).values()} == {200}


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--experiment", "nope", "--app-url", APP], "error: no experiment 'nope'"),
        (["--experiment", "sklearn-grid"], f"error: no app URL: give --app-url https://trellis.example.org or set {PUBLIC_URL_ENV}"),  # noqa: E501
        (["--experiment", "sklearn-grid", "--app-url", "ftp://x"], "error: the app's public URL must look like"),
    ],
)  # fmt: skip
def test_trellis_link_errors_are_one_line(store, extra, says):
    MlflowClient(tracking_uri=store).create_experiment("sklearn-grid")
    env = {k: v for k, v in os.environ.items() if k != PUBLIC_URL_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "trellis.cli", "link", "--tracking-uri", store, *extra],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(says), done.stderr


@settings(max_examples=200, deadline=None)
@given(url=st.text(max_size=40) | st.text(max_size=20).map(lambda s: "http://" + s))
def test_any_app_url_gives_links_the_app_accepts_or_a_reason(url):
    """Whatever the value, the config either takes it (and its links are well-formed) or names the key."""
    from tests.conftest import BASE
    from trellis.search.config import ConfigError, parse_config

    try:
        config = parse_config({**BASE, "tracking": {"app_url": url}})
    except ConfigError as err:
        assert "tracking.app_url" in dict(err.problems)
        return
    if config.tracking.app_url:
        for label, link in links(trellis_note_line(config.tracking.app_url, "7", "ab12")).items():
            assert urlsplit(link).scheme in ("http", "https") and link.endswith("exp=7&search=ab12"), (label, link)
