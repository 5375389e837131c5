"""Sign-in with MLflow's own users and permissions, against a real ``mlflow server --app-name basic-auth``:
a user sees only the experiments MLflow lets them read, through every page and callback, and may launch,
stop, resume or edit only where MLflow lets them edit."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from mlflow import MlflowClient

from tests.auth_walk import callback_body, refused_everywhere
from tests.conftest import BASE
from trellis.app.auth.create import authenticator_from_env
from trellis.app.factory import create_app
from trellis.search.config import parse_config
from trellis.search.control.queue import submit_search
from trellis.search.engine.resume import ResumeError

ADMIN = ("admin", "admin-password-1234")
USERS = {"alice": "alice-password-1", "bob": "bob-password-123"}


def basic(name: str) -> dict:
    password = ADMIN[1] if name == "admin" else USERS[name]
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """An MLflow server with basic auth (default permission: none) over its own SQLite store; experiments
    team-a (alice may edit) and team-b (alice and bob may read), each with a few runs and a waiting search."""
    folder = tmp_path_factory.mktemp("mlflow-auth")
    (folder / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = f"sqlite:///{folder / 'mlruns.db'}"
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth.ini"), "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-secret"}  # fmt: skip
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed after the module
    cmd = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--backend-store-uri", store,
           "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1",
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(
                f"mlflow server with basic auth did not come up:\n{(folder / 'server.log').read_text()[-3000:]}"
            )
        time.sleep(0.5)
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = ADMIN
    try:
        from mlflow.server import get_app_client

        admin = get_app_client("basic-auth", tracking_uri=url)
        for name, password in USERS.items():
            admin.create_user(name, password)
        client = MlflowClient(url)
        ids = {name: client.create_experiment(name) for name in ("team-a", "team-b")}
        admin.grant_user_permission("alice", "experiment", ids["team-a"], "EDIT")
        admin.grant_user_permission("alice", "experiment", ids["team-b"], "READ")
        admin.grant_user_permission("bob", "experiment", ids["team-b"], "READ")
        runs, searches = {}, {}
        for name, exp in ids.items():
            runs[name] = []
            for i in range(3):
                run = client.create_run(exp, run_name=f"{name}-run{i}")
                client.log_metric(run.info.run_id, "loss", 0.1 * i)
                client.set_terminated(run.info.run_id)
                runs[name].append(run.info.run_id)
            raw = {**BASE, "name": f"{name}-search", "tracking": {"uri": url, "experiment": name}}
            searches[name] = submit_search(parse_config(raw), launched_by="admin")
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    yield {"url": url, "store": store, "ids": ids, "runs": runs, "searches": searches, "folder": folder}
    proc.terminate()
    proc.wait(30)
    log.close()


@pytest.fixture(scope="module")
def app(secured):
    return create_app(
        secured["store"], cache=None, auth=authenticator_from_env({"TRELLIS_MLFLOW_AUTH": secured["url"]})
    )


def test_no_route_or_callback_answers_without_mlflow_credentials(app):
    assert refused_everywhere(app.server, app) == []
    wrong = {"Authorization": "Basic " + base64.b64encode(b"alice:not-her-password").decode()}
    assert refused_everywhere(app.server, app, headers=wrong) == []


def test_a_user_sees_only_the_experiments_mlflow_lets_them_read(app, secured):
    client = app.server.test_client()
    a, b = secured["ids"]["team-a"], secured["ids"]["team-b"]
    layout = client.get("/_dash-layout", headers=basic("bob")).get_data(as_text=True)
    assert "team-b" in layout and "team-a" not in layout
    assert client.get(f"/?exp={a}", headers=basic("bob")).status_code == 404  # as if it did not exist
    assert client.get(f"/?exp={b}", headers=basic("bob")).status_code == 200
    assert client.get(f"/?exp={a}", headers=basic("alice")).status_code == 200
    # a crafted export callback naming both experiments gives bob team-b's runs and none of team-a's
    selection = {"experiments": [a, b], "searches": []}
    body = callback_body(app, "ov-download", {"selection.data": selection}, ["ov-export.n_clicks"])
    csv = client.post("/_dash-update-component", json=body, headers=basic("bob")).get_data(as_text=True)
    assert all(run in csv for run in secured["runs"]["team-b"])
    assert not any(run in csv for run in secured["runs"]["team-a"])
    csv = client.post("/_dash-update-component", json=body, headers=basic("alice")).get_data(as_text=True)
    assert all(run in csv for run in secured["runs"]["team-a"] + secured["runs"]["team-b"])
    # and what every callback reads through: the context, in bob's request
    context = app.trellis_context
    with app.server.test_request_context("/", headers=basic("bob")):
        assert app.server.preprocess_request() is None
        assert {e["value"] for e in context.experiments()} == {b}
        trials = context.view([a, b]).table.runs
        assert set(trials["experiment_id"]) == {b}
        with pytest.raises(ResumeError, match="may read"):
            context.search_config(secured["searches"]["team-a"])
        assert context.search_config(secured["searches"]["team-b"]).name == "team-b-search"


def _stop(app, search_id: str, user: str) -> str:
    body = callback_body(app, "ctl-action-msg", {"ctl-pick.value": search_id}, ["ctl-stop.n_clicks"])
    response = app.server.test_client().post("/_dash-update-component", json=body, headers=basic(user))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_launch_stop_resume_edit_only_where_mlflow_allows_editing(app, secured):
    client = MlflowClient(secured["store"])
    a_search, b_search = secured["searches"]["team-a"], secured["searches"]["team-b"]
    for user, search in (("bob", b_search), ("alice", b_search), ("bob", a_search)):
        assert "may not" in _stop(app, search, user)  # read-only or no access: refused, nothing written
    assert client.get_run(b_search).info.status == "SCHEDULED" and client.get_run(a_search).info.status == "SCHEDULED"
    assert "cancelled" in _stop(app, a_search, "alice")
    assert client.get_run(a_search).info.status != "SCHEDULED"
    assert "cancelled" in _stop(app, b_search, "admin")  # MLflow's admin may edit everywhere
    context = app.trellis_context
    with app.server.test_request_context("/", headers=basic("alice")):
        assert app.server.preprocess_request() is None
        assert context.can_edit(secured["ids"]["team-a"]) and not context.can_edit(secured["ids"]["team-b"])


def test_no_callback_shows_bob_a_run_of_an_experiment_he_may_not_read(app, secured):
    """Every registered callback, posted as bob with both experiments chosen and team-a's search picked:
    no answer names a run of team-a (its runs, its search) or its name; the same walk as alice does."""
    from tests.auth_walk import every_callback

    a, b = secured["ids"]["team-a"], secured["ids"]["team-b"]
    a_search = secured["searches"]["team-a"]
    hidden = [*secured["runs"]["team-a"], a_search, "team-a-search"]
    values = {
        "selection.data": {"experiments": [a, b], "searches": []},
        "selected-runs.data": secured["runs"]["team-a"] + secured["runs"]["team-b"],
        "ctl-pick.value": a_search,
        "url.search": f"?exp={a},{b}",
        "url.pathname": "/",
    }
    client = app.server.test_client()
    seen = {"alice": 0, "bob": 0}
    for user in ("bob", "alice"):
        for body in every_callback(app):
            for item in body["inputs"] + body["state"]:
                item["value"] = values.get(f"{item['id']}.{item['property']}")
            body["changedPropIds"] = [f"{i['id']}.{i['property']}" for i in body["inputs"][:1]]
            response = client.post("/_dash-update-component", json=body, headers=basic(user))
            assert response.status_code < 500, (user, body["output"])
            text = response.get_data(as_text=True)
            seen[user] += sum(h in text for h in hidden)
    assert seen["bob"] == 0
    assert seen["alice"] > 0  # the walk does reach team-a's runs for a user who may read them


def test_an_app_without_its_own_mlflow_account_says_so_on_the_page(secured, monkeypatch):
    """Reading through the server with sign-in but no account of the app's own: the page's status line says
    the server refused the app's credentials (a 200 with the reason, not a 500)."""
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    app = create_app(secured["url"], cache=None, auth=authenticator_from_env({"TRELLIS_MLFLOW_AUTH": secured["url"]}))
    selection = {"experiments": [secured["ids"]["team-b"]], "searches": []}
    body = callback_body(app, "ov-download", {"selection.data": selection}, ["ov-export.n_clicks"])
    response = app.server.test_client().post("/_dash-update-component", json=body, headers=basic("bob"))
    assert response.status_code == 200
    assert "refused the app" in response.get_data(as_text=True)


def test_mlflow_not_answering_gives_a_page_that_says_so_and_retries_never_the_runs(store, tmp_path):
    """The MLflow server that signs users in is down (nothing listens on its port): every request is a 503,
    a page one says why and reloads itself, a callback gets the line alone; nothing of the store is shown."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    os.environ.pop("TRELLIS_MLFLOW_AUTH", None)
    from trellis.app.auth.mlflow_users import MlflowUsers

    app = create_app(store, cache=str(tmp_path / "cache"), auth=MlflowUsers(f"http://127.0.0.1:{port}"))
    client = app.server.test_client()
    headers = {"Authorization": "Basic " + base64.b64encode(b"alice:secret-pass").decode()}
    page = client.get("/", headers=headers)
    assert page.status_code == 503 and page.headers["Retry-After"] == "10"
    text = page.get_data(as_text=True)
    assert "http-equiv='refresh'" in text and "not answering" in text and str(port) not in text
    callback = client.post("/_dash-update-component", json=callback_body(app, "ov-counts", {}), headers=headers)
    assert callback.status_code == 503 and callback.mimetype == "text/plain" and "<" not in callback.get_data(True)
    assert client.get("/").status_code == 401  # without credentials: asked for them, as ever
