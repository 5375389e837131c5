"""With users configured, every route answers 401 without credentials: pages, layout, callbacks, assets."""

import base64

import pytest

from app.auth import parse_users
from app.factory import create_app


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/"),
        ("get", "/curves"),
        ("get", "/_dash-layout"),
        ("get", "/_dash-dependencies"),
        ("post", "/_dash-update-component"),
        ("get", "/assets/00-bootstrap.min.css"),
        ("get", "/_favicon.ico"),
    ],
)
def test_every_route_needs_login(store, method, path):
    server = create_app(store, users={"ana": "s3cret"}).server
    client = server.test_client()
    response = getattr(client, method)(path)
    assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]
    wrong = base64.b64encode(b"ana:nope").decode()
    assert getattr(client, method)(path, headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    good = base64.b64encode(b"ana:s3cret").decode()
    assert getattr(client, method)(path, headers={"Authorization": f"Basic {good}"}).status_code != 401


def test_without_users_the_app_is_open_and_users_parse(store):
    client = create_app(store).server.test_client()
    assert client.get("/").status_code == 200
    assert parse_users("a:b, c:d:e") == {"a": "b", "c": "d:e"}
    with pytest.raises(ValueError):
        parse_users("nocolon")
