"""Walk every route Flask registered and every Dash callback of an app, as a client would reach them."""

from __future__ import annotations

import re

SKIP_METHODS = {"HEAD", "OPTIONS"}


def every_route(server) -> list[tuple[str, str]]:
    """(method, path) for each rule of the server, its variables filled with plausible values."""
    requests = []
    for rule in server.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "dash/dash_renderer.min.js" if "path" in m.group(1) else "x",
                      rule.rule)  # fmt: skip
        for method in sorted(rule.methods - SKIP_METHODS):
            requests.append((method, path))
    return requests


def every_callback(dash_app) -> list[dict]:
    """A request body for each registered callback (as the renderer posts it, inputs empty)."""
    bodies = []
    for output, spec in dash_app.callback_map.items():
        if "callback" not in spec:
            continue  # clientside: the browser runs it, the server has nothing to answer
        outputs = [{"id": o.split(".")[0], "property": o.split(".")[-1]} for o in output.strip(".").split("...")]
        bodies.append(
            {
                "output": output,
                "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": [{"id": i["id"], "property": i["property"], "value": None} for i in spec["inputs"]],
                "state": [{"id": s["id"], "property": s["property"], "value": None} for s in spec["state"]],
                "changedPropIds": [],
            }
        )
    return bodies


def refused_everywhere(server, dash_app, expected=(401,), **request_kwargs) -> list[str]:
    """What answered anything but ``expected`` without credentials: each route and callback. Empty is good."""
    client = server.test_client()
    leaks = []
    for method, path in every_route(server):
        status = client.open(path, method=method, **request_kwargs).status_code
        if status not in expected:
            leaks.append(f"{method} {path}: {status}")
    for body in every_callback(dash_app):
        status = client.post("/_dash-update-component", json=body, **request_kwargs).status_code
        if status not in expected:
            leaks.append(f"callback {body['output']}: {status}")
    return leaks


def callback_body(dash_app, output_part: str, values: dict, changed: list[str] | None = None) -> dict:
    """The body the renderer would post for the callback whose output names ``output_part``, with the inputs
    and states in ``values`` ("id.property" -> value; others None) and ``changed`` as the triggering inputs."""
    for body in every_callback(dash_app):
        if output_part in body["output"]:
            for item in body["inputs"] + body["state"]:
                item["value"] = values.get(f"{item['id']}.{item['property']}")
            body["changedPropIds"] = changed or []
            return body
    raise KeyError(output_part)
