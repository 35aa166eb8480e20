"""YAML for text from others: PyYAML's safe loader (its C version when built), with the size of the document
after alias expansion bounded before anything is built.

The safe loader already refuses tags that build Python objects; what it does not bound is an alias
bomb (``a: &a [x, x]``, ``b: &b [*a, *a]``, ...), a few hundred bytes that expand to billions of nodes in
everything that walks the result (validation, JSON, a database). We count the expanded nodes on the
composed node graph (each node once, memoised), refuse documents over ``max_nodes`` and recursive ones,
and only then construct Python objects.
"""
from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 200_000
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlTooLarge(yaml.YAMLError):
    """The document expands beyond the node limit (an alias bomb) or refers to itself."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes of the document with every alias expanded; raises YamlTooLarge past ``limit`` or on a cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                raise YamlTooLarge(f"the document expands to more than {limit} nodes (aliases repeat too much)")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlTooLarge("the document refers to itself through an alias")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def safe_load(text: str, max_nodes: int = MAX_NODES) -> Any:
    """``yaml.safe_load`` with the expanded document bounded to ``max_nodes`` nodes (YamlTooLarge)."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()
