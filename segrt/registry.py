"""One lookup table per extensible kind (models, backends, sources, sinks)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from segrt.errors import SegrtError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → object. An unknown name raises an error that lists the valid ones.

    >>> colours = Registry("colour")
    >>> _ = colours.register("red")(1)
    >>> colours.get("red")
    1
    """

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind, self.plural = kind, plural or (kind[:-1] + "es" if kind.endswith(("s", "x")) else kind + "s")
        self._items: dict[str, T] = {}

    @classmethod
    def table(cls, kind: str, package: str, entries: dict[str, str]) -> "Registry[str]":
        """A registry of lazily loaded classes: ``{name: "module:Class"}``, each module inside
        ``package`` (imported by :meth:`load` only when its entry is used)."""
        registry: Registry[str] = Registry(kind)
        for name, target in entries.items():
            registry.register(name)(f"{package}.{target}")
        return registry

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise SegrtError(
                f"unknown {self.kind} {name!r}; valid {self.plural}: {', '.join(self.names())}"
            ) from None

    def load(self, name: str):
        """For entries registered as ``"package.module:Attr"`` strings: imports the module
        only now and returns the attribute, so listing names never imports heavy modules."""
        module_name, _, attr = str(self.get(name)).partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def names(self) -> list[str]:
        return sorted(self._items)


def unknown_options(factory, options: dict, exclude: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(the keys of ``options`` that ``factory`` does not take, sorted; the names it takes).
    A factory with ``**kwargs`` takes everything. Lets a registry refuse a misspelt option
    by name instead of failing inside the constructor."""
    import inspect

    params = inspect.signature(factory).parameters
    accepted = [p for p in params if p not in exclude and params[p].kind is not params[p].VAR_KEYWORD]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return [], accepted
    return sorted(set(options) - set(accepted)), accepted
