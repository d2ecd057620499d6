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


def model_path(path: str) -> str:
    """A local path that must exist, or a hub id (org/name); ValueError with the fix otherwise."""
    local = Path(path).expanduser()
    looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") != 1
    if looks_local and not local.is_dir():
        raise ValueError(
            f"model path {path} does not exist: pass a directory written by save_pretrained "
            "(or a Hugging Face hub id such as org/name)"
        )
    return str(local) if looks_local else path


def load_causal_lm(path: str) -> Any:
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the CLI's own bars only; errors stay one line

    try:
        return AutoModelForCausalLM.from_pretrained(model_path(path))
    except OSError as exc:
        raise ValueError(f"could not load a causal LM from {path!r} ({exc}): check the path or id") from None


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path(path))
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
