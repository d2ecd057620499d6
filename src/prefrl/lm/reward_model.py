"""Reward model for language: an LM backbone + a scalar head read at the last real token, saved and
loaded as a directory. How it is trained is :mod:`prefrl.lm.rm_training`. After training,
:meth:`ScalarRewardModel.shift_to` makes reference answers score 0 on average.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prefrl.lm.data import (
    AnswerChunk,
    Batch,
    SharedPromptBatch,
    position_ids,
)
from prefrl.lm.generation import CACHE_KEYWORD, cache_of
from prefrl.masked import last_valid_index

if TYPE_CHECKING:
    from transformers import PreTrainedModel

HEAD_FILE = "reward_head.pt"
META_FILE = "reward_model.json"


class ScalarRewardModel(nn.Module):
    """backbone (a transformers base model, ``AutoModel``) + linear head -> one score per position."""

    def __init__(self, backbone: Any, shift: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        width = int(getattr(backbone.config, "hidden_size", 0) or backbone.config.n_embd)
        self.head = nn.Linear(width, 1)
        nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(width + 1))
        nn.init.zeros_(self.head.bias)
        self.shift: torch.Tensor
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.held_out_accuracy: float | None = None
        """Accuracy on comparisons it was not trained on, when measured (saved with it)."""

    @classmethod
    def from_causal_lm(cls, model: PreTrainedModel) -> ScalarRewardModel:
        """A reward model whose backbone is (a copy of) a causal LM's trunk."""
        import copy

        return cls(copy.deepcopy(model.base_model))

    def token_scores(self, batch: Batch) -> torch.Tensor:
        """(B, L) score of every prefix, minus the shift (fp32)."""
        out = self.backbone(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask.long(),
            position_ids=batch.position_ids,
        )
        return self.head(out.last_hidden_state).squeeze(-1).float() - self.shift

    def forward(self, batch: Batch | Sequence[Batch] | SharedPromptBatch) -> torch.Tensor:
        """(B,) score read at the last real token of each sequence. Several batches (one batch cut
        into chunks of similar length, so less padding) give their scores concatenated, from one
        forward call (as data parallelism wants it); so do the chunks of a :class:`SharedPromptBatch`."""
        if isinstance(batch, SharedPromptBatch):
            return self.shared_prompt_scores(batch)
        if not isinstance(batch, Batch):
            return torch.cat([self(chunk) for chunk in batch])
        scores = self.token_scores(batch)
        last = last_valid_index(batch.attention_mask)
        return scores.gather(1, last[:, None]).squeeze(1)

    def shared_prompt_scores(self, batch: SharedPromptBatch) -> torch.Tensor:
        """(n_1 + n_2 + ..,) scores of the answers chunk after chunk, each prompt forwarded once:
        its keys and values (the KV cache, with their gradients) are reused by each of its answers,
        which continue at the prompt's next position. The same scores as the full sequences."""
        prompt = self.backbone(
            input_ids=batch.prompt_ids,
            attention_mask=batch.prompt_mask.long(),
            position_ids=position_ids(batch.prompt_mask),
            use_cache=True,
        )
        keys_values = [(layer[0], layer[1]) for layer in cache_of(prompt)]
        return torch.cat([self._answer_scores(batch, chunk, keys_values) for chunk in batch.chunks])

    def _answer_scores(
        self,
        batch: SharedPromptBatch,
        chunk: AnswerChunk,
        keys_values: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        """(n,) scores of one chunk of answers on top of their prompts' keys and values."""
        from transformers import DynamicCache

        rows, mask = chunk.rows, chunk.answer_mask
        cache = DynamicCache(
            ddp_cache_data=[(k[rows], v[rows]) for k, v in keys_values], config=self.backbone.config
        )
        out = self.backbone(
            input_ids=chunk.answer_ids,
            attention_mask=torch.cat([batch.prompt_mask[rows], mask], dim=1).long(),
            position_ids=batch.prompt_mask[rows].sum(1, keepdim=True)
            + torch.arange(mask.shape[1], device=mask.device),
            use_cache=True,
            **{CACHE_KEYWORD: cache},
        )
        last = last_valid_index(mask)[:, None, None].expand(-1, 1, out.last_hidden_state.shape[-1])
        return self.head(out.last_hidden_state.gather(1, last)).view(-1).float() - self.shift

    def response_values(self, batch: Batch) -> torch.Tensor:
        """(B, R) value of each response state s_t (read at the token before response token t)."""
        start, length = batch.prompt_length - 1, batch.response_mask.shape[1]
        return self.token_scores(batch)[:, start : start + length]

    @torch.no_grad()
    def shift_to(self, reference_scores: torch.Tensor) -> None:
        """Shift so that the given scores of reference answers average 0."""
        self.shift += reference_scores.mean()

    def save(self, path: Path) -> None:
        path = Path(path)
        self.backbone.save_pretrained(str(path))
        torch.save(self.head.state_dict(), path / HEAD_FILE)
        meta = {"shift": float(self.shift), "held_out_accuracy": self.held_out_accuracy}
        (path / META_FILE).write_text(json.dumps(meta) + "\n")

    @classmethod
    def load(cls, path: Path) -> ScalarRewardModel:
        from transformers import AutoModel

        path = Path(path)
        if not (path / HEAD_FILE).is_file():
            raise ValueError(
                f"{path} is not a prefrl reward model (no {HEAD_FILE}): pass the output of `prefrl lm rm`"
            )
        model = cls(AutoModel.from_pretrained(str(path)))
        model.head.load_state_dict(torch.load(path / HEAD_FILE, map_location="cpu", weights_only=True))
        meta = json.loads((path / META_FILE).read_text())
        model.shift.fill_(meta["shift"])
        model.held_out_accuracy = meta.get("held_out_accuracy")
        return model


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0 (RL and reward-model training want deterministic outputs)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
