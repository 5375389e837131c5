"""Bad page URLs: a 400 or 404 with a message saying what is wrong, never a 500 or a silently empty page."""

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trellis.app.factory import create_app
from trellis.app.shell import parse_query
from trellis.app.url_checks import query_problems
from trellis.search.engine.runner import run_search


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"exp": ["abc"]}, "exp: 'abc' is not an experiment id"),
        ({"exp": ["1.5"]}, "exp: '1.5' is not an experiment id"),
        ({"exp": ["名前"]}, "is not an experiment id"),
        ({"exp": ["1\x00"]}, "is not an experiment id"),
        ({"exp": ["9" * 10_000]}, "is not an experiment id"),
        ({"exp": [",".join(str(i) for i in range(40_000))]}, "exp: at most 50 experiments, got 40000"),
        ({"search": ["../../etc"]}, "search: '../../etc' is not a search id"),
        ({"objective": ["x" * 300]}, "objective:"),
    ],
)
def test_each_bad_value_is_named(query, problem):
    problems = query_problems(query)
    assert any(problem in p for p in problems), problems


def test_good_queries_pass_and_the_shell_keeps_only_valid_values():
    assert query_problems({"exp": ["1,2"], "search": ["ab12", "experiment:3"], "objective": ["val_loss"]}) == []
    assert parse_query("?exp=1,abc,2&search=zz,ab12") == (["1", "2"], ["ab12"])


@pytest.fixture
def app_client(make_config, store):
    result = run_search(make_config(termination={"max_trials": 2}))
    client = create_app(store).server.test_client()
    client.search_id = result.search_id
    return client, result.experiment_id


def test_the_server_answers_bad_links_with_4xx_and_the_reason(app_client):
    client, exp = app_client
    assert client.get(f"/?exp={exp}").status_code == 200
    bad = client.get("/?exp=abc")
    assert bad.status_code == 400 and "&#x27;abc&#x27; is not an experiment id" in bad.get_data(as_text=True)
    missing = client.get("/control?exp=99999")
    assert missing.status_code == 404 and "no experiment 99999" in missing.get_data(as_text=True)
    assert client.get("/nope").status_code == 404
    assert client.get("/_dash-layout").status_code == 200  # the app's own routes are not page links


def test_an_unknown_search_is_a_404_that_names_it_and_a_known_one_opens(app_client):
    client, exp = app_client
    known = client.search_id
    assert client.get(f"/space?exp={exp}&search={known}").status_code == 200
    assert client.get(f"/curves?search={known}").status_code == 200  # found without its experiment too
    unknown = "ab" * 16
    for url in (f"/?exp={exp}&search={unknown}", f"/space?search={unknown}", "/?search=experiment:99999"):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert "no search" in answer.get_data(as_text=True) or "no experiment" in answer.get_data(as_text=True)
    other = client.get(f"/?exp={exp}&search={known},{unknown}")
    assert (
        other.status_code == 404
        and unknown in other.get_data(as_text=True)
        and known not in other.get_data(as_text=True)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=60), key=st.sampled_from(["exp", "search", "objective"]))
def test_any_query_value_gives_a_page_or_a_4xx(app_client, value, key):
    client, _ = app_client
    status = client.get(f"/?{key}={quote(value)}").status_code
    assert status in (200, 400, 404)
