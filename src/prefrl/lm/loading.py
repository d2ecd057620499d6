"""Models, tokenizers and reward functions in and out of ``prefrl lm``: ``from_pretrained`` on a
local directory or a hub id, ``save_pretrained`` for outputs, each failure one line with the fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefrl.lm.data import check_tokenizer
from prefrl.lm.reward_model import ScalarRewardModel
from prefrl.lm.scores import ScoreFn
from prefrl.user_code import import_user_module
from prefrl.validation import require

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


HUB_HOST = ("huggingface.co", 443)
HUB_TIMEOUT_S = 3.0
"""How long to wait for the hub before saying it cannot be reached (not transformers' retries)."""


def model_path(path: str) -> str:
    """What ``from_pretrained`` should load, resolved as transformers resolves it: an existing local
    directory, else a hub id (``gpt2``, ``org/name``), from the local cache or the hub. A ValueError
    with the fix, at once, for a path that does not exist or an id neither cached nor reachable."""
    local = Path(path).expanduser()
    if local.is_dir():
        return str(local)
    looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") > 1
    if looks_local:
        raise ValueError(
            f"model path {path} does not exist: pass a directory written by save_pretrained "
            "(or a Hugging Face hub id such as gpt2 or org/name)"
        )
    if not hub_cached(path) and not hub_reachable():
        raise ValueError(
            f"{path!r} is not a local directory, not in the Hugging Face cache, and huggingface.co cannot "
            f"be reached from here: download it where the hub is reachable (huggingface-cli download "
            f"{path}) and copy the cache here, or pass a local directory written by save_pretrained"
        )
    return path


def hub_cached(repo_id: str) -> bool:
    """Whether the hub model ``repo_id`` is in the local cache (its config.json at least)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # a malformed id: from_pretrained will say what is wrong with it
        return False


def hub_reachable() -> bool:
    """Whether the hub answers within ``HUB_TIMEOUT_S`` (offline mode counts as unreachable)."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    try:
        socket.create_connection(HUB_HOST, timeout=HUB_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def load_causal_lm(path: str) -> Any:
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI's own bars only; errors stay one line

    resolved = model_path(path)
    try:
        return AutoModelForCausalLM.from_pretrained(resolved)
    except OSError as exc:
        raise ValueError(f"could not load a causal LM from {path!r} ({exc}): check the path or id") from None


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    resolved = model_path(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"could not load a tokenizer from {path!r} ({exc}): save one next to the model"
        ) from None
    check_tokenizer(tokenizer)
    return tokenizer


def load_function(spec: str, what: str) -> ScoreFn:
    """'module:function' -> the function (ValueError with the fix)."""
    module_name, _, name = spec.partition(":")
    require(bool(module_name and name), f"--{what} {spec!r}: use the form module:function")
    try:
        function = getattr(import_user_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"--{what} {spec!r} cannot be imported ({exc}): put {module_name}.py in the current "
            "directory or install its package"
        ) from None
    require(callable(function), f"--{what} {spec!r} is not callable: name a function f(prompts, responses)")
    return function


def save_model(model: Any, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if path.exists():
        shutil.rmtree(path)
    if isinstance(model, ScalarRewardModel):
        model.save(path)
    else:
        model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
