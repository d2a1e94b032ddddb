"""Reading a recipe's YAML strictly: safe tags only, each key once per mapping, and a bound on its expanded size.

PyYAML's safe loader keeps the last of two equal keys without a word, and builds aliases as shared references,
so a few lines of nested anchors (an "alias bomb") load instantly but expand to billions of values the first time
porter copies or hashes the recipe. Both are refused here, when the file is read, with the lines they are on.
"""
from __future__ import annotations

import sys
from typing import Any

import yaml

# A real recipe, sweeps included, is a few thousand nodes; a bomb is millions. Aliases count each time they are
# used, as the recipe's values would once copied.
MAX_EXPANDED_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlProblem(ValueError):
    """The YAML parses but porter refuses it; the message says where and why."""


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:  # `<<: *base` then overriding a key is YAML's way to extend
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports an unhashable key
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise YamlProblem(f"duplicate key {key!r} at line {line} (first at line {seen[key]}); each key "
                                      "may appear once in a mapping")
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document holds once every alias is expanded; stops counting past the bound."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise YamlProblem(f"the anchor at line {node.start_mark.line + 1} contains an alias to itself; "
                              "expected a recipe without recursive aliases")
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_EXPANDED_NODES:
                break
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        return size(root)
    except RecursionError:
        raise YamlProblem("the recipe is nested too deeply") from None
    finally:
        sys.setrecursionlimit(limit)


def load_strict(text: str) -> Any:
    """The document in ``text``, or None when it is empty. Raises yaml.YAMLError for malformed YAML and
    YamlProblem for duplicate keys and documents whose expanded size passes MAX_EXPANDED_NODES."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_EXPANDED_NODES:
            raise YamlProblem(f"the recipe expands to more than {MAX_EXPANDED_NODES:,} values once its aliases "
                              "are expanded (an alias bomb?); expected a recipe of ordinary size")
        return loader.construct_document(node)
    finally:
        loader.dispose()


__all__ = ["MAX_EXPANDED_NODES", "YamlProblem", "load_strict"]
