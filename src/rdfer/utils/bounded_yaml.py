"""YAML read with bounds, so that a few hundred bytes cannot cost unbounded CPU and memory.

    values = load_yaml(text)                 # yaml.SafeLoader's rules
    values = load_yaml(text, MyLoader)       # a SafeLoader subclass's rules (rdfer.config's numbers)

At most MAX_YAML_BYTES characters, MAX_YAML_ALIASES aliases (`*name`) and MAX_YAML_NODES values with
every alias expanded (a billion-laughs file is refused before anything walks it); beyond, a
yaml.YAMLError saying which bound. PyYAML is imported when a file is read, not with this module.
"""

from __future__ import annotations

import functools

MAX_YAML_BYTES = 1_000_000  # a config is a few kB; a larger "config" is not one
MAX_YAML_ALIASES = 100  # *refs: a few are handy; thousands are a bomb
MAX_YAML_NODES = 100_000


def _expanded_size(node, memo: dict) -> int:
    """Values in `node` with every alias expanded (what walking the loaded data visits)."""
    import yaml

    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(key, memo) + _expanded_size(value, memo) for key, value in node.value)
    else:
        total = 1
    memo[id(node)] = total
    return total


@functools.cache
def bounded(loader):
    """A subclass of the yaml Loader class `loader` that counts aliases and values while it composes."""
    import yaml

    class Bounded(loader):
        def compose_node(self, parent, index):
            self._nodes = getattr(self, "_nodes", 0) + 1
            if self.check_event(yaml.AliasEvent):
                self._aliases = getattr(self, "_aliases", 0) + 1
                if self._aliases > MAX_YAML_ALIASES:
                    raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name): refused")
            if self._nodes > MAX_YAML_NODES:
                raise yaml.YAMLError(f"more than {MAX_YAML_NODES} values: refused, a config is far smaller")
            return super().compose_node(parent, index)

        def compose_document(self):
            node = super().compose_document()
            if node is not None and _expanded_size(node, {}) > MAX_YAML_NODES:
                raise yaml.YAMLError(f"its aliases expand to more than {MAX_YAML_NODES} values: refused "
                                     "(a billion-laughs bomb, or far larger than a config)")
            return node

    return Bounded


def load_yaml(text: str, loader=None):
    """`text` parsed with `loader` (default yaml.SafeLoader) within the bounds; yaml.YAMLError beyond them
    (nesting too deep for the parser raises RecursionError)."""
    import yaml

    if len(text) > MAX_YAML_BYTES:
        raise yaml.YAMLError(f"{len(text)} characters, more than the {MAX_YAML_BYTES} a config may have")
    return yaml.load(text, Loader=bounded(loader or yaml.SafeLoader))  # noqa: S506 (SafeLoader subclasses)
