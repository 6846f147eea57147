"""Worker side of building models the way the checked code builds them (imports torch lazily).

- `parse_args()` of the checked code returns every default of its parser (required options
  included, as None), in a namespace whose other attributes (`args.n_embed = len(vocab)` in code
  that is not run) get values from their names;
- config objects (dataclasses, NamedTuples, `get_default_config()` nodes) keep their defaults, with
  `None` and impossible values (`vocab_size=-1`) replaced from how the field is named;
- the built model's dtype (`.double()` at the call site) decides the input's float dtype.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

ValueFor = Callable[[str], object]


class DefaultsNamespace(argparse.Namespace):
    """A parsed-arguments namespace of defaults; attributes the code sets elsewhere get named values."""

    _value_for: ValueFor = staticmethod(lambda name: 16)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(self)._value_for(name)
        setattr(self, name, value)
        return value


def _defaults(parser: argparse.ArgumentParser) -> DefaultsNamespace:
    namespace = DefaultsNamespace()
    for action in parser._actions:
        if action.dest == argparse.SUPPRESS or action.default == argparse.SUPPRESS:
            continue
        value = action.default
        if isinstance(value, str) and callable(action.type):
            try:
                value = action.type(value)
            except Exception:  # noqa: BLE001 - keep the string, as given
                pass
        if value is None and action.choices:
            value = next(iter(action.choices))
        setattr(namespace, action.dest, value)
    for key, value in parser._defaults.items():
        setattr(namespace, key, value)
    return namespace


def install_argparse_defaults(value_for: ValueFor) -> None:
    """Make `parse_args()` in the checked code return the parser's defaults, whatever sys.argv holds."""
    DefaultsNamespace._value_for = staticmethod(value_for)

    def parse_args(self, args=None, namespace=None):
        return _defaults(self)

    def parse_known_args(self, args=None, namespace=None):
        return _defaults(self), []

    argparse.ArgumentParser.parse_args = parse_args  # type: ignore[method-assign]
    argparse.ArgumentParser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def is_usable_int(name: str, value) -> bool:
    """False for sizes a config leaves to be filled in (`vocab_size=-1`, `n_kv_heads=None`)."""
    return not (isinstance(value, int) and not isinstance(value, bool) and value <= 0
                and any(k in name.lower() for k in ("size", "dim", "vocab", "num", "n_")))


def filled_config(config, value_for: ValueFor, *, clear: str | None = None):
    """A copy of a config object with None/impossible fields named-filled; `clear` set to None.

    Works on dataclasses, NamedTuples and plain attribute objects (minGPT's CfgNode). Returns None
    when the object has no readable fields.
    """
    fields = _fields(config)
    if fields is None:
        return None
    changes: dict[str, object] = {}
    for name, value in fields.items():
        if name == clear:
            changes[name] = None
        elif value is None or not is_usable_int(name, value):
            changes[name] = value_for(name)
    if not changes:
        return config
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        try:
            return dataclasses.replace(config, **changes)
        except (TypeError, ValueError):
            pass
    if isinstance(config, tuple) and hasattr(config, "_replace"):
        return config._replace(**changes)
    try:
        copy = type(config).__new__(type(config))  # type: ignore[call-overload]
        copy.__dict__.update(vars(config))
        copy.__dict__.update(changes)
        return copy
    except (TypeError, AttributeError):
        return None


def _fields(config) -> dict | None:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: getattr(config, f.name, None) for f in dataclasses.fields(config)}
    if isinstance(config, tuple) and hasattr(config, "_asdict"):
        return dict(config._asdict())
    try:
        values = vars(config)
    except TypeError:
        return None
    return {k: v for k, v in values.items() if not k.startswith("_")} or None


def string_fields(config) -> list[str]:
    """Fields holding a string: a model type or preset that may exclude explicit sizes (minGPT)."""
    return [k for k, v in (_fields(config) or {}).items() if isinstance(v, str)]


def config_variants(config, value_for: ValueFor):
    """Config objects to try, in order: as given, None-filled, then None-filled without each preset."""
    yield "its defaults", config
    filled = filled_config(config, value_for)
    if filled is not None and filled is not config:
        yield "its defaults, unset sizes filled", filled
    for name in string_fields(config):
        cleared = filled_config(config, value_for, clear=name)
        if cleared is not None:
            yield f"its defaults, unset sizes filled, {name}=None", cleared


ARGS_NAMES = frozenset({"args", "opt", "opts", "options", "flags", "FLAGS", "hparams", "hp", "config", "cfg"})


def define_missing_global(exc: BaseException, namespace: dict, defaults: dict, value_for: ValueFor) -> bool:
    """After a NameError for a module global the slice left out (`nc` set in an `if` chain at the top
    of a script, `args` parsed under `__main__`), define it the way the script would. False when
    `exc` is no such error or the name is already defined (retrying would not help)."""
    name = getattr(exc, "name", None) if isinstance(exc, NameError) else None
    if not name or name in namespace or name.startswith("__"):
        return False
    if name in ARGS_NAMES:
        parsed = DefaultsNamespace()
        for key, value in defaults.items():
            setattr(parsed, key, value)
        namespace[name] = parsed
    elif name in defaults and defaults[name] is not None:
        namespace[name] = defaults[name]
    else:
        namespace[name] = value_for(name)
    return True
