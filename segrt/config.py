"""YAML configs loaded into frozen dataclasses, strictly.

Unknown keys, missing required keys and wrong types are errors that name the file and the
key (``configs/train/x.yaml: key 'epochs': expected int, got str 'ten'``). Nothing is
coerced silently except int → float, which YAML users expect (``lr: 1`` means 1.0).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from segrt.errors import ConfigError
from segrt.files import excerpt, read_user_text, shown

T = TypeVar("T")


def load_config(path: str | Path, cls: type[T], overrides: dict[str, Any] | None = None) -> T:
    """Read ``path`` (YAML mapping) into the frozen dataclass ``cls``.

    ``overrides`` (already-typed values, e.g. from CLI flags; ``None`` values are ignored)
    replace keys of the file before validation.
    """
    path = Path(path)
    raw = load_yaml(path, "config")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(raw).__name__}")
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(cls, raw, source=str(path))


MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 32


class _StrictLoader(yaml.SafeLoader):
    """YAML without aliases (a few bytes of nested aliases expand to gigabytes) and without
    duplicate keys (the later one would silently win)."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"line {event.start_mark.line + 1}: YAML aliases (*name) are not accepted in segrt "
                              "files; write the value out")
        self.depth = getattr(self, "depth", 0) + 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels; is it the right file?")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            if duplicate:
                raise ConfigError(f"line {key_node.start_mark.line + 1}: key {excerpt(key)} appears twice; keep one")
        return super().construct_mapping(node, deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def load_yaml(path: Path, what: str = "config") -> object:
    """Parses a YAML file strictly: a regular UTF-8 file of at most 1 MiB, no aliases, no
    duplicate keys, at most 32 levels deep; every error is one line naming the file."""
    text = read_user_text(path, what, MAX_YAML_BYTES, ConfigError)
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)
    except ConfigError as exc:
        raise ConfigError(f"{shown(path)}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{shown(path)}:{where} is not valid YAML; fix the syntax") from None
    except RecursionError:
        raise ConfigError(f"{shown(path)}: nested too deeply; is it the right file?") from None


def from_dict(cls: type[T], raw: dict[str, Any], source: str = "<config>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types recursively."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(fields), key=str)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {excerpt(prefix + str(unknown[0]), 130)}; valid keys: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, field in fields.items():
        key = f"{prefix}{name}"
        if name not in raw:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: missing required key '{key}'")
            continue
        values[name] = _check(hints[name], raw[name], source, key)
    try:
        return cls(**values)
    except ValueError as exc:  # __post_init__ range checks
        raise ConfigError(f"{source}: {exc}") from None


def _check(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:  # Optional[X]: X's own, more precise error
            return _check(non_none[0], value, source, key)
        for arg in non_none:  # the first member type the value fits
            try:
                return _check(arg, value, source, key)
            except ConfigError:
                continue
        _fail(source, key, " or ".join(getattr(a, "__name__", str(a)) for a in non_none), value)
    if origin is dict:
        if not isinstance(value, dict):
            _fail(source, key, "a mapping", value)
        return {_check(args[0], k, source, f"{key}.{k}"): _check(args[1], v, source, f"{key}.{k}")
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            _fail(source, key, "a mapping", value)
        return from_dict(tp, value, source, prefix=f"{key}.")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            _fail(source, key, "a list", value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(args[0], v, source, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{source}: key '{key}': expected {len(args)} items, got {len(value)}")
        return tuple(_check(a, v, source, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is typing.Literal:
        if value not in args or type(value) is not type(args[0]):
            hint = ""
            if isinstance(value, bool):  # YAML 1.1 reads on/off/yes/no as booleans
                hint = " (YAML read on/off/yes/no as a boolean: quote the value)"
            raise ConfigError(
                f"{source}: key '{key}': expected one of {', '.join(map(repr, args))}, got {excerpt(value)}{hint}"
            )
        return value
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        _fail(source, key, "float", value)
    if tp in (int, str, bool):
        if type(value) is not tp:
            _fail(source, key, tp.__name__, value)
        return value
    raise TypeError(f"config type {tp!r} of '{key}' is not supported")  # programming error


def _fail(source: str, key: str, expected: str, value: Any) -> typing.NoReturn:
    raise ConfigError(
        f"{source}: key '{key}': expected {expected}, got {type(value).__name__} {excerpt(value)}"
    )
