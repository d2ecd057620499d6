"""Importing the user's own code (a module that registers an env, a reward function) as ``python -m``
would: the current directory importable."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType


def import_user_module(module: str) -> ModuleType:
    """``importlib.import_module`` with the current directory on the path; its exceptions pass on."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    return importlib.import_module(module)
