"""LoRA adapters (Hu et al. 2021) through ``peft``: train small low-rank updates of chosen weight
matrices instead of every weight. The frozen reference of DPO and PPO is then the same model with its
adapters off (:class:`AdaptersOff`), so no second copy of the weights is kept; the trained model is
saved merged, as a plain ``save_pretrained`` directory that every command loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from prefrl.validation import require, validation_enabled


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 0
    """Rank of the adapters (0: no adapters, every weight trains)."""
    alpha: int = 16
    """Scale of the adapters' update (alpha / rank)."""
    dropout: float = 0.0
    """Dropout on the adapters' input while training."""
    target_modules: tuple[str, ...] = ()
    """Names of the layers that get adapters (e.g. q_proj v_proj; empty: peft's default for the
    architecture: GPT-2's c_attn, Llama's q_proj and v_proj)."""

    def __post_init__(self) -> None:
        if validation_enabled():
            self.validate()

    def validate(self) -> None:
        require(self.rank >= 0, f"lora rank must be >= 0, got {self.rank}: fix --lora.rank")
        require(self.alpha > 0, f"lora alpha must be > 0, got {self.alpha}: fix --lora.alpha")
        require(
            0 <= self.dropout < 1, f"lora dropout must be in [0, 1), got {self.dropout}: fix --lora.dropout"
        )

    @property
    def enabled(self) -> bool:
        return self.rank > 0


def layer_names(model: torch.nn.Module) -> list[str]:
    """The last name part of every module holding a weight matrix (what LoRA can target)."""
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if _is_matrix(module)}
    return sorted(names)


def _is_matrix(module: torch.nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return (
        isinstance(weight, torch.Tensor) and weight.dim() == 2 and not isinstance(module, torch.nn.Embedding)
    )


def apply_lora(model: Any, config: LoRAConfig) -> Any:
    """``model`` with LoRA adapters (only they train), or ``model`` itself when ``config`` is off;
    a ValueError with the fix for target layers the model does not have."""
    if not config.enabled:
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ValueError("LoRA needs peft: pip install 'prefrl[lm]'") from None
    available = layer_names(model)
    missing = sorted(set(config.target_modules) - set(available))
    require(
        not missing,
        f"LoRA target modules {missing} are not layers of this model: pick from {', '.join(available)}",
    )
    peft_config = LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
        target_modules=list(config.target_modules) or None,
    )  # fmt: skip
    try:
        return get_peft_model(model, peft_config)
    except ValueError as exc:
        raise ValueError(
            f"LoRA: {exc}: name the layers with --lora.target-modules (this model's: {', '.join(available)})"
        ) from None


def base_model(model: Any) -> Any:
    """The model under its adapters (itself without)."""
    return model.get_base_model() if is_lora(model) else model


def is_lora(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def merged(model: Any) -> Any:
    """A plain transformers model with the adapters folded into its weights (to save)."""
    return model.merge_and_unload() if is_lora(model) else model


class AdaptersOff(torch.nn.Module):
    """A LoRA model with its adapters switched off: the frozen reference of DPO and PPO without a copy
    of the weights. It holds no parameters of its own (the model is not registered as a submodule),
    so freezing or moving it leaves the trained model alone."""

    lora_model: Any

    def __init__(self, model: Any) -> None:
        super().__init__()
        object.__setattr__(self, "lora_model", model)

    @property
    def config(self) -> Any:
        return self.lora_model.config

    def forward(self, **inputs: Any) -> Any:
        with self.lora_model.disable_adapter():
            return self.lora_model(**inputs)
