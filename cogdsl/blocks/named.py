"""Module and parameter dictionaries keyed by spec names.

A spec may name a block ``keys``, ``values``, ``items`` or ``update`` (names that
``nn.ModuleDict`` and ``nn.ParameterDict`` use themselves), or ``training``, ``_modules``,
``_parameters`` or ``_forward_hooks`` (attributes every ``nn.Module`` instance has), and torch
refuses all of them as keys. These dictionaries store such a name with a trailing ``-`` (which
no spec name has) and give it back unchanged, so the compiled model's code, its ``state_dict``
and its checkpoints all work with any name the grammar accepts. Every other name is stored as
it is, so a checkpoint's parameter names are the spec's.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

_ESCAPE = "-"


# container class -> its instance attributes; a plain dict, not functools.cache, which torch.compile would
# trace through (and warn about) at every lookup of a module by name in a compiled step
_INSTANCE_ATTRIBUTES: dict[type, frozenset[str]] = {}


def _instance_attributes(container: type) -> frozenset[str]:
    """What a fresh ``container`` holds in its own ``__dict__`` (``training``, ``_modules``, the hook
    dictionaries, a ParameterDict's ``_keys``): names torch refuses as keys, like the class's own."""
    known = _INSTANCE_ATTRIBUTES.get(container)
    if known is None:
        known = _INSTANCE_ATTRIBUTES[container] = frozenset(vars(container()))
    return known


def stored_key(name: str, container: type) -> str:
    """The key ``name`` is stored under in a ``container`` (a ModuleDict or ParameterDict class): escaped
    when it is an attribute of the class or of its instances."""
    taken = hasattr(container, name) or name in _instance_attributes(container)
    return f"{name}{_ESCAPE}" if taken else name


def spec_name(key: str) -> str:
    """The spec name a stored key stands for."""
    return key[:-1] if key.endswith(_ESCAPE) else key


class NamedModules(nn.ModuleDict):
    """``nn.ModuleDict`` that accepts any spec name as a key."""

    def __getitem__(self, name: str) -> nn.Module:
        return super().__getitem__(stored_key(name, nn.ModuleDict))

    def __setitem__(self, name: str, module: nn.Module) -> None:
        super().__setitem__(stored_key(name, nn.ModuleDict), module)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(stored_key(name, nn.ModuleDict))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(stored_key(name, nn.ModuleDict))

    def __iter__(self) -> Iterator[str]:
        return (spec_name(key) for key in super().__iter__())

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(self)

    def items(self) -> list[tuple[str, nn.Module]]:  # type: ignore[override]
        return [(spec_name(key), module) for key, module in super().items()]


class NamedParameters(nn.ParameterDict):
    """``nn.ParameterDict`` that accepts any spec name as a key."""

    def _key_to_attr(self, key: str) -> str:
        return stored_key(super()._key_to_attr(key), nn.ParameterDict)
