"""Config text read safely: YAML (or JSON) with duplicate keys refused and aliases, nesting and size bounded.

PyYAML's ``safe_load`` accepts a key written twice (the last silently wins), expands nothing but lets an
alias bomb (nine levels of nine aliases) through as a small object that any walk over it (a message, a
copy, a JSON dump) blows up to gigabytes, and recurses without bound on deep nesting. A config needs none
of that: ``load_text`` refuses each with one line.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, CollectionStartEvent

MAX_BYTES = 1 << 20  # a config of a megabyte is not a config
MAX_ALIASES = 1000  # YAML anchors reused this many times at most
MAX_NODES = 100_000  # values in the document once every alias is expanded
MAX_DEPTH = 50  # mappings and lists nested this deep at most


class ConfigTextError(ValueError):
    """One line that says what is wrong with the text (and where)."""


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise ConfigTextError(f"line {mark.line + 1}: more than {MAX_ALIASES} uses of YAML aliases")
        starts = self.check_event(CollectionStartEvent)
        if starts:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigTextError(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        try:
            return Composer.compose_node(self, parent, index)
        finally:
            if starts:
                self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the constructor says so
                continue
            if first != key_node.start_mark.line + 1:
                raise ConfigTextError(
                    f"line {key_node.start_mark.line + 1}: duplicate key {_short(key)} (first on line {first}); "
                    "the last would silently win"
                )
        return super().construct_mapping(node, deep=deep)


def load_text(text: str, as_json: bool = False) -> Any:
    """The value of a config's text; ``ConfigTextError`` (one line) for text no config should be."""
    if len(text) > MAX_BYTES:
        raise ConfigTextError(f"{len(text)} characters: more than a config's {MAX_BYTES}")
    if as_json:
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except RecursionError:
            raise ConfigTextError(f"nested more than {MAX_DEPTH} levels deep") from None
        except json.JSONDecodeError as exc:
            raise ConfigTextError(f"not valid JSON: {exc}") from None
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node, {})
        if expanded > MAX_NODES:  # an alias bomb: small as written, huge as soon as anything walks it
            raise ConfigTextError(f"its aliases expand to {expanded:,} values (more than {MAX_NODES:,})")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigTextError(f"not valid YAML: {_short(str(exc), 300)}") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` holds once every alias is expanded (each shared node counted once per use)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a node reached again while being counted (a recursive alias) counts as one
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, sizes) for item in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigTextError(f"duplicate key {_short(key)}: the last would silently win")
        out[key] = value
    return out


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) and limit > 60 else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
