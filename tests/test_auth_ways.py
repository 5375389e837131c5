"""Each way of signing in: a users file of argon2 hashes, a trusted proxy's header, plain TRELLIS_AUTH; every
route and callback refuses a request without a user, and a wrong setting stops the app at start."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys

import pytest

from tests.auth_walk import refused_everywhere
from tests.conftest import ROOT
from trellis.app.auth.create import authenticator_from_env
from trellis.app.auth.users_file import UsersFileError, read_users_file, write_user
from trellis.app.factory import create_app


def basic(name: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def trellis(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trellis.cli", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # fmt: skip


def test_users_add_writes_salted_hashes_and_the_app_signs_them_in(store, tmp_path):
    users = tmp_path / "users"
    done = trellis("users", "add", "ana", "--file", str(users), "--password-stdin", stdin="pässwört, with comma\n")
    assert done.returncode == 0, done.stderr
    assert "added ana" in done.stdout
    assert (
        trellis("users", "add", "bo", "--file", str(users), "--password-stdin", stdin="other password\n").returncode
        == 0
    )
    text = users.read_text()
    assert "pässwört" not in text and "other password" not in text  # only hashes are stored
    hashes = read_users_file(users)
    assert set(hashes) == {"ana", "bo"} and all(h.startswith("$argon2id$") for h in hashes.values())
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600
    app = create_app(store, cache=None, auth=authenticator_from_env({"TRELLIS_USERS_FILE": str(users)}))
    client = app.server.test_client()
    assert client.get("/", headers=basic("ana", "pässwört, with comma")).status_code == 200
    assert client.get("/", headers=basic("ana", "pässwört")).status_code == 401
    assert client.get("/", headers=basic("bo", "pässwört, with comma")).status_code == 401
    assert client.get("/").status_code == 401
    # a user added while the app runs signs in without a restart; a password change takes effect at once
    write_user(users, "cy", "third one")
    write_user(users, "ana", "new one!")
    assert client.get("/", headers=basic("cy", "third one")).status_code == 200
    assert client.get("/", headers=basic("ana", "pässwört, with comma")).status_code == 401
    assert client.get("/", headers=basic("ana", "new one!")).status_code == 200
    assert refused_everywhere(app.server, app) == []
    # the file emptied, broken or removed while the app runs: nobody gets in (never the users read before)
    for broken in ("", "garbage\n", None):
        if broken is None:
            users.unlink()
        else:
            users.write_text(broken)
        assert client.get("/", headers=basic("cy", "third one")).status_code == 401
    write_user(users, "cy", "third one")
    assert client.get("/", headers=basic("cy", "third one")).status_code == 200


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "names no user"),
        ("# only a comment\n\n", "names no user"),
        ("ana:\n", "not an argon2 hash"),
        ("ana:plain-password\n", "not an argon2 hash"),
        (":$argon2id$v=19$m=65536,t=3,p=4$abc$def\n", "expected name:hash"),
        ("ana\n", "expected name:hash"),
        ("ana:$argon2id$x\nana:$argon2id$y\n", "named twice"),
    ],
)
def test_a_malformed_users_file_stops_the_app_at_start(store, tmp_path, content, reason):
    users = tmp_path / "users"
    users.write_text(content)
    with pytest.raises(UsersFileError, match=reason):
        create_app(store, cache=None, auth=authenticator_from_env({"TRELLIS_USERS_FILE": str(users)}))


def test_users_command_refuses_bad_input_in_one_line(tmp_path):
    users = tmp_path / "users"
    for args, stdin, reason in [
        (("users", "add", "a b"), "pw\n", "is not a user name"),
        (("users", "add", "ana"), "\n", "password: at least 8 characters"),
        (("users", "add", "ana"), "short\n", "password: at least 8 characters"),
        (("users", "remove", "nobody"), "", "cannot read the users file"),
    ]:
        done = trellis(*args, "--file", str(users), "--password-stdin", stdin=stdin)
        assert done.returncode == 2 and reason in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    done = subprocess.run([sys.executable, "-m", "trellis.cli", "users", "add", "ana", "--file", str(users)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "--password-stdin" in done.stderr and "Traceback" not in done.stderr
    assert not users.exists()  # nothing was written


def test_removing_the_last_user_says_the_app_lets_nobody_in(tmp_path):
    users = tmp_path / "users"
    assert (
        trellis("users", "add", "ana", "--file", str(users), "--password-stdin", stdin="long enough\n").returncode == 0
    )
    done = trellis("users", "remove", "ana", "--file", str(users))
    assert done.returncode == 0 and "lets nobody in" in done.stdout


def test_a_trusted_proxy_names_the_user_and_nobody_else_can(store):
    auth = authenticator_from_env(
        {"TRELLIS_PROXY_USER_HEADER": "X-Forwarded-User", "TRELLIS_TRUSTED_PROXIES": "127.0.0.1, 10.9.0.0/16"}
    )
    app = create_app(store, cache=None, auth=auth)
    client = app.server.test_client()
    from_proxy = {"REMOTE_ADDR": "10.9.3.4"}
    assert client.get("/", headers={"X-Forwarded-User": "ana"}, environ_base=from_proxy).status_code == 200
    assert client.get("/", environ_base=from_proxy).status_code == 401  # the proxy named nobody
    outsider = {"REMOTE_ADDR": "10.8.0.1"}
    assert client.get("/", headers={"X-Forwarded-User": "ana"}, environ_base=outsider).status_code == 403
    with app.server.test_request_context("/", headers={"X-Forwarded-User": "ana"}, environ_base=from_proxy):
        assert app.server.preprocess_request() is None and app.trellis_context.current_user() == "ana"
    two = client.get("/", headers=[("X-Forwarded-User", "ana"), ("X-Forwarded-User", "bo")], environ_base=from_proxy)
    assert two.status_code == 401  # two names: none
    for odd in ("a,b", "<script>", "x" * 257):
        assert client.get("/", headers={"X-Forwarded-User": odd}, environ_base=from_proxy).status_code == 401
    # every route and callback: refused from outside the proxy, even naming a user, and from it naming nobody
    assert refused_everywhere(app.server, app, (403,), headers={"X-Forwarded-User": "ana"}, environ_base=outsider) == []
    assert refused_everywhere(app.server, app, (401,), environ_base=from_proxy) == []


def test_plain_users_refuse_every_route_and_callback(store):
    app = create_app(store, cache=None, users={"ana": "s3cret"})
    assert refused_everywhere(app.server, app) == []
    assert refused_everywhere(app.server, app, headers=basic("ana", "wrong")) == []


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"TRELLIS_AUTH": "a:b", "TRELLIS_USERS_FILE": "/x"}, "choose one way of signing in"),
        ({"TRELLIS_PROXY_USER_HEADER": "X-Forwarded-User"}, "name the proxy's address"),
        ({"TRELLIS_PROXY_USER_HEADER": "X-User", "TRELLIS_TRUSTED_PROXIES": "proxy.local"}, "not an address"),
        ({"TRELLIS_TRUSTED_PROXIES": "127.0.0.1"}, "without TRELLIS_PROXY_USER_HEADER"),
        ({"TRELLIS_PROXY_USER_HEADER": "X-User", "TRELLIS_TRUSTED_PROXIES": "0.0.0.0/0"}, "trusts too many"),
        ({"TRELLIS_PROXY_USER_HEADER": "X-User", "TRELLIS_TRUSTED_PROXIES": "::/0"}, "trusts too many"),
        ({"TRELLIS_PROXY_USER_HEADER": "Authorization", "TRELLIS_TRUSTED_PROXIES": "10.0.0.5"}, "not a header"),
        ({"TRELLIS_PROXY_USER_HEADER": "X Bad:Header", "TRELLIS_TRUSTED_PROXIES": "10.0.0.5"}, "not a header"),
        ({"TRELLIS_MLFLOW_AUTH": "mlflow-host:5000"}, "not the http"),
        ({"TRELLIS_USERS_FILE": "/nonexistent/users"}, "cannot read the users file"),
    ],
)
def test_settings_that_would_weaken_sign_in_are_refused(env, reason):
    with pytest.raises(ValueError, match=reason):
        authenticator_from_env(env)


def test_serve_with_a_bad_sign_in_setting_says_so_in_one_line(store):
    from mlflow import MlflowClient

    MlflowClient(store).search_experiments()  # the store exists: only the sign-in setting is wrong
    env = {**os.environ, "TRELLIS_USERS_FILE": "/nonexistent/users"}
    done = subprocess.run([sys.executable, "-m", "trellis.cli", "serve", "--tracking-uri", store, "--no-agent"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "cannot read the users file" in done.stderr and "Traceback" not in done.stderr


def test_gunicorn_stops_at_once_on_a_wrong_sign_in_setting(tmp_path):
    """The WSGI module exits with gunicorn's boot-error code (3), so the master stops instead of booting
    workers forever; one line says why."""
    (tmp_path / "users").write_text("")
    env = {**os.environ, "TRELLIS_USERS_FILE": str(tmp_path / "users")}
    done = subprocess.run(
        [sys.executable, "-c", "import trellis.app.wsgi"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 3 and "names no user" in done.stderr and "Traceback" not in done.stderr
