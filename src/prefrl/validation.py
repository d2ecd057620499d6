"""Config validation helpers.

Configs are frozen dataclasses whose invariants are checked in ``__post_init__`` by a ``validate()``
method. The CLI builds configs with tyro inside :func:`deferred_validation` and calls ``validate()``
itself, so that bad input ends in a one-line error that says the fix instead of a parser box.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_VALIDATE = contextvars.ContextVar("prefrl_validate_configs", default=True)


@contextlib.contextmanager
def deferred_validation() -> Iterator[None]:
    """Within this block, configs skip their ``__post_init__`` checks (call ``validate()`` later)."""
    token = _VALIDATE.set(False)
    try:
        yield
    finally:
        _VALIDATE.reset(token)


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
