"""Config validation helpers.

Configs are frozen dataclasses whose invariants are checked in ``__post_init__`` by a ``validate()``
method. The CLI builds configs with tyro inside :func:`deferred_validation` and calls ``validate()``
itself, so that bad input ends in a one-line error that says the fix instead of a parser box.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import typing
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_VALIDATE = contextvars.ContextVar("prefrl_validate_configs", default=True)


@contextlib.contextmanager
def deferred_validation() -> Iterator[None]:
    """Within this block, configs skip their ``__post_init__`` checks (call ``validate()`` later)."""
    token = _VALIDATE.set(False)
    try:
        yield
    finally:
        _VALIDATE.reset(token)


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a (nested) config dataclass from its ``dataclasses.asdict`` form, as saved in JSON
    (lists back to tuples). Unknown fields mean another prefrl version wrote it: ValueError. A field
    the saved form lacks (an older prefrl wrote it) takes the value it had in effect then, from the
    class's ``SAVED_BEFORE`` mapping, else its default."""
    hints = typing.get_type_hints(cls, include_extras=False)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"the saved {cls.__name__} has fields this prefrl does not know ({', '.join(unknown)}): "
            "use the prefrl version that wrote it"
        )
    before: dict[str, Any] = getattr(cls, "SAVED_BEFORE", {})
    kwargs = {name: value for name, value in before.items() if name not in data}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)  # type: ignore[arg-type]
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def validation_enabled() -> bool:
    return _VALIDATE.get()


def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition``; ``message`` says what to change."""
    if not condition:
        raise ValueError(message)


def require_positive(name: str, value: float, flag: str | None = None) -> None:
    flag = flag or "--" + name.replace("_", "-")
    require(value > 0, f"{name} must be > 0, got {value}: pass a positive {flag}")


def require_unit_interval(name: str, value: float) -> None:
    flag = "--" + name.replace("_", "-")
    require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}: fix {flag}")


def require_one_of(what: str, value: Any, literal: Any) -> None:
    """``value`` must be one of the values of the ``Literal`` type ``literal``."""
    choices = typing.get_args(literal)
    require(value in choices, f"unknown {what} {value!r}: use one of {', '.join(map(str, choices))}")
