"""A search diagnosis' fix carried in a link to the relaunch form (``/control?...&fix=...``): the finding's
``config_change`` (dotted config keys and their new values) as URL-safe base64 of compact JSON, read back
with bounds (a link is user input) and applied to the parent's config before the form is filled. Only the
sections a finding changes may be named: never the trial, the store or the executor."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Mapping
from typing import Any

SECTIONS = ("space", "budget", "early_stopping", "algorithm", "termination")
MAX_TEXT = 2000
MAX_KEYS = 16
KEY = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+){1,3}")


class FixError(ValueError):
    """Why a ``fix`` value cannot be used (the message is shown as is)."""


def encode_fix(change: Mapping[str, Any]) -> str:
    text = json.dumps(dict(change), separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_fix(text: str) -> dict[str, Any]:
    """The config change a link carries; FixError saying why not."""
    if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
        raise FixError(f"at most {MAX_TEXT} characters of base64")
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise FixError("not a fix written by the search diagnosis") from None
    if not isinstance(raw, dict) or not raw or len(raw) > MAX_KEYS:
        raise FixError(f"a mapping of 1 to {MAX_KEYS} config keys")
    for key, value in raw.items():
        if not KEY.fullmatch(key) or key.split(".")[0] not in SECTIONS:
            raise FixError(f"{key[:60]!r} is not a key the diagnosis changes ({', '.join(SECTIONS)})")
        if not (value is None or isinstance(value, bool | int | float | str)) or len(str(value)) > 200:
            raise FixError(f"{key}: a number, a word or null")
    return raw


def apply_fix(config: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the config dict with each dotted key set (missing sections are created); ``space.NAME: value``
    fixes the parameter at that value."""
    out = copy.deepcopy(dict(config))
    for dotted, value in change.items():
        if dotted.startswith("space.") and dotted.count(".") == 1:
            value = {"type": "fixed", "value": value}
        node = out
        *parents, last = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[last] = value
    return out
