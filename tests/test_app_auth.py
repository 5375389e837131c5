"""With users configured, every route answers 401 without credentials: pages, layout, callbacks, assets."""

import base64

import pytest

from trellis.app.auth.plain import parse_users
from trellis.app.factory import create_app


@pytest.mark.parametrize(
    "method, path, signed_in",
    [
        ("get", "/", 200),
        ("get", "/curves", 200),
        ("get", "/control", 200),
        ("get", "/_dash-layout", 200),
        ("get", "/_dash-dependencies", 200),
        ("post", "/_dash-update-component", 400),  # signed in, but no JSON body: refused as a bad request
        ("get", "/assets/00-bootstrap.min.css", 200),
        ("get", "/_favicon.ico", 200),
    ],
)
def test_every_route_needs_login(store, method, path, signed_in):
    server = create_app(store, users={"ana": "s3cret"}).server
    client = server.test_client()
    response = getattr(client, method)(path)
    assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]
    wrong = base64.b64encode(b"ana:nope").decode()
    assert getattr(client, method)(path, headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    good = base64.b64encode(b"ana:s3cret").decode()
    assert getattr(client, method)(path, headers={"Authorization": f"Basic {good}"}).status_code == signed_in


def test_without_users_the_app_is_open_and_users_parse(store):
    client = create_app(store).server.test_client()
    assert client.get("/").status_code == 200
    assert parse_users("a:b, c:d:e") == {"a": "b", "c": "d:e"}
    assert parse_users(None) == parse_users("") == {}


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("nocolon", "looks like user:password"),
        (" ", "names no user"),
        (",", "names no user"),
        ("alice:", "the password is empty"),
        (":pw", "looks like user:password"),
        ("a:1,a:2", "named twice"),
    ],
)
def test_auth_settings_that_would_silently_weaken_it_are_refused(spec, reason):
    with pytest.raises(ValueError, match=reason):
        parse_users(spec)


def test_a_non_ascii_password_signs_in(store):
    client = create_app(store, users={"zoë": "pässwörd"}).server.test_client()
    good = base64.b64encode("zoë:pässwörd".encode()).decode()
    bad = base64.b64encode("zoë:passwort".encode()).decode()
    assert client.get("/", headers={"Authorization": f"Basic {good}"}).status_code == 200
    assert client.get("/", headers={"Authorization": f"Basic {bad}"}).status_code == 401
