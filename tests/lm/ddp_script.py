"""Run by tests/lm/test_distributed.py, alone or under `accelerate launch --cpu --num_processes 2`:
two SFT steps and two reward-model steps on a fixed global batch; rank 0 saves the parameters."""

import random
import sys

import torch


def build():
    from prefrl.lm import tiny_task

    tokenizer = tiny_task.build_tokenizer()
    model = tiny_task.build_tiny_model(tokenizer, seed=0)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # dropout would make the runs differ by chance, not by a bug
    return tokenizer, model


def sgd_like(trainer):
    """Adam with eps = 1 steps about lr * gradient: Adam's sign-like first steps would blow float noise
    in near-zero gradients (the reward head's bias gets none at all) up to full-size differences."""
    for group in trainer.optimizer.param_groups:
        group["eps"] = 1.0
    return trainer


def train(accelerator):
    from prefrl.lm import tiny_task
    from prefrl.lm.reward_model import RMConfig, RMTrainer, ScalarRewardModel
    from prefrl.lm.sft import SFTConfig, SFTTrainer

    tokenizer, model = build()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    demos = tiny_task.sft_records(random.Random(0), 64)
    config = SFTConfig(batch_size=8, num_epochs=1, learning_rate=0.5)
    sft = sgd_like(SFTTrainer(model, tokenizer, demos, config, accelerator=accelerator))
    for _ in range(2):
        sft.train_iteration()
    prefs = [
        {"prompt": d["prompt"], "chosen": "the soup was great .", "rejected": d["completion"]} for d in demos
    ]
    rm = ScalarRewardModel.from_causal_lm(model)
    trainer = sgd_like(
        RMTrainer(rm, tokenizer, prefs, RMConfig(batch_size=8, learning_rate=0.5), accelerator)
    )
    for _ in range(2):
        trainer.train_iteration()
    world = 1 if accelerator is None else accelerator.num_processes
    return {"sft": model.state_dict(), "rm": rm.state_dict(), "initial": initial, "world": world}


if __name__ == "__main__":
    torch.set_num_threads(1)
    accelerator = None
    if sys.argv[2] == "accelerate":
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
    state = train(accelerator)
    if accelerator is None or accelerator.is_main_process:
        torch.save(state, sys.argv[1])
