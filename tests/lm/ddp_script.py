"""Run by tests/lm/test_distributed.py, alone or under 2 gloo processes: three SFT steps (the third
also taken by a fresh trainer resumed from a checkpoint after the second), two reward-model steps
on a fixed global batch, and two PPO iterations (with PPO-ptx) whose responses are seeded by their
prompts, so that 1 and 2 processes sample the same global batch; rank 0 saves the parameters.
With a third argument ``lora``: SFT and PPO with LoRA adapters instead (the reference is the policy
with its adapters off, as ``prefrl lm ppo --lora.rank N`` builds it)."""

import copy
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
    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # ZeRO: the engine's
    for group in optimizer.param_groups:
        group["eps"] = 1.0
    return trainer


def train(accelerator, parallel="ddp"):
    from prefrl.lm import tiny_task
    from prefrl.lm.reward_model import ScalarRewardModel
    from prefrl.lm.rm_training import RMConfig, RMTrainer
    from prefrl.lm.sft import SFTConfig, SFTTrainer

    tokenizer, model = build()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    demos = tiny_task.sft_records(random.Random(0), 64)
    config = SFTConfig(batch_size=8, num_epochs=1, learning_rate=0.5)

    def sft_trainer(model):
        return sgd_like(SFTTrainer(model, tokenizer, demos, config, accelerator, parallel=parallel))

    sft = sft_trainer(model)
    for _ in range(2):
        sft.train_iteration()
    checkpoint = copy.deepcopy(on_every_rank(sft.state_dict(), parallel))  # a snapshot, as on disk
    sft.train_iteration()
    resumed = sft_trainer(build()[1])  # a fresh model and optimizer, resumed from the checkpoint
    resumed.load_state_dict(checkpoint)
    resumed.train_iteration()
    sft_state = on_every_rank(sft.state_dict()["model"], parallel)  # whole tensors
    resumed_state = resumed.state_dict()["model"]
    prefs = [
        {"prompt": d["prompt"], "chosen": "the soup was great .", "rejected": d["completion"]} for d in demos
    ]
    lm = tiny_task.build_tiny_model(tokenizer, seed=0)  # a fresh, unsharded copy of the SFT model
    lm.load_state_dict(sft_state)
    rm = ScalarRewardModel.from_causal_lm(lm)
    config = RMConfig(batch_size=8, learning_rate=0.5)
    trainer = sgd_like(RMTrainer(rm, tokenizer, prefs, config, accelerator, parallel=parallel))
    for _ in range(2):
        trainer.train_iteration()
    world = 1 if accelerator is None else accelerator.num_processes
    state = {"sft": sft_state, "rm": trainer.state_dict()["model"], "initial": initial, "world": world}
    if resumed_state:  # rank 0 (the others hold no whole tensors under FSDP and ZeRO)
        state["resume_diff"] = max(float((sft_state[k] - v).abs().max()) for k, v in resumed_state.items())
    if parallel in ("fsdp", "zero3"):  # the share of the RM's parameters this process holds
        held, total = zip(*(held_and_total(p) for p in rm.parameters()), strict=True)
        state["local_fraction"] = sum(held) / sum(total)
    return {**state, **train_ppo(accelerator, demos, parallel=parallel)}


def on_every_rank(state, parallel):
    """Rank 0's ``state`` on every rank (under FSDP and ZeRO only rank 0 gets whole tensors)."""
    if parallel == "ddp":
        return state
    shared = [state]
    torch.distributed.broadcast_object_list(shared, src=0)
    return shared[0]


def held_and_total(parameter):
    """(elements of ``parameter`` this process holds: its FSDP2 shard or ZeRO-3 partition, all)."""
    if hasattr(parameter, "ds_tensor"):
        return parameter.ds_tensor.numel(), parameter.ds_numel
    return getattr(parameter, "_local_tensor", parameter).numel(), parameter.numel()


SAMPLED_ROWS = []


def prompt_seeded_sample(
    model, p_ids, p_mask, max_new_tokens, eos, pad, temperature, generator, synced=False
):
    """prefrl's sampler row by row, each row seeded by its prompt tokens: a prompt gets the same
    response whichever rank samples it; the log-probs of the responses as cut (one forward of the
    batch, collective when sharded). Records how many rows this process sampled."""
    from prefrl.lm.data import batch_from_tensors
    from prefrl.lm.generation import response_logprobs, sample

    SAMPLED_ROWS.append(len(p_ids))
    rows = []
    for i in range(len(p_ids)):
        ids = p_ids[i : i + 1, p_mask[i]]
        seeded = torch.Generator().manual_seed(int((ids * torch.arange(1, ids.shape[1] + 1)).sum()))
        rows.append(
            sample(
                model,
                ids,
                torch.ones_like(ids, dtype=torch.bool),
                max_new_tokens,
                eos,
                pad,
                temperature,
                seeded,
                synced=synced,  # a sharded policy: every rank samples as long as the longest
            )
        )
    responses = torch.full((len(rows), max_new_tokens), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), max_new_tokens, dtype=torch.bool)
    for i, (r, _) in enumerate(rows):
        # end each response after a prompt-seeded number of tokens: lengths differ between rows, so
        # the ranks' shares of a minibatch have different token counts (the loss weighting matters)
        end = min(int(r.shape[1]), 1 + int(p_ids[i].sum()) % max_new_tokens)
        responses[i, :end], mask[i, :end] = r[0, :end], True
        responses[i, end - 1] = eos
    logprobs = response_logprobs(model, batch_from_tensors(p_ids, p_mask, responses, mask), temperature)
    return responses, mask, torch.where(mask, logprobs, 0.0)


def train_ppo(accelerator, demos, parallel="ddp", adapters=False):
    import prefrl.lm.ppo as ppo_module
    from prefrl.lm import tiny_task
    from prefrl.lm.lora import AdaptersOff
    from prefrl.lm.ppo import LMPPOConfig, LMPPOTrainer

    ppo_module.sample_with_logprobs = prompt_seeded_sample
    SAMPLED_ROWS.clear()
    tokenizer, policy = build()
    policy = lora(policy) if adapters else policy
    prompts = tiny_task.sample_prompts(random.Random(1), 16)

    def gold(ps, rs):
        return [tiny_task.gold_score(p, r) for p, r in zip(ps, rs, strict=True)]

    config = LMPPOConfig(
        batch_size=8,
        minibatch_size=4,
        update_epochs=2,
        max_new_tokens=8,
        learning_rate=0.05,
        ptx_coef=0.0 if adapters else 0.5,
    )
    trainer = LMPPOTrainer(
        policy,
        tokenizer,
        prompts,
        config,
        reward_fn=gold,
        gold_fn=gold,
        ptx_records=None if adapters else demos,
        reference=AdaptersOff(policy) if adapters else None,
        accelerator=accelerator,
        parallel=parallel,
    )
    sgd_like(trainer)
    metrics = [trainer.train_iteration() for _ in range(2)]
    rows = torch.tensor([sum(SAMPLED_ROWS)])
    if accelerator is not None:
        rows = accelerator.gather(rows)
    state = trainer.state_dict()  # whole tensors (on rank 0 only, when sharded)
    return {
        "ppo_policy": state["policy"],
        "ppo_critic": state["critic"],
        "ppo_metrics": [{k: v for k, v in m.items() if not k.startswith("time/")} for m in metrics],
        "ppo_sampled_rows": rows.tolist(),
    }


def lora(model):
    from prefrl.lm.lora import LoRAConfig, apply_lora

    return apply_lora(model, LoRAConfig(rank=4))


def train_lora(accelerator, parallel="ddp"):
    """Two SFT steps and two PPO iterations of models with LoRA adapters: only the adapters train."""
    from prefrl.lm import tiny_task
    from prefrl.lm.sft import SFTConfig, SFTTrainer

    tokenizer, model = build()
    model = lora(model)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    demos = tiny_task.sft_records(random.Random(0), 64)
    config = SFTConfig(batch_size=8, num_epochs=1, learning_rate=0.5)
    sft = sgd_like(SFTTrainer(model, tokenizer, demos, config, accelerator, parallel=parallel))
    for _ in range(2):
        sft.train_iteration()
    world = 1 if accelerator is None else accelerator.num_processes
    ppo = train_ppo(accelerator, demos, parallel=parallel, adapters=True)
    return {"sft": sft.state_dict()["model"], "initial": initial, "world": world, **ppo}


if __name__ == "__main__":
    torch.set_num_threads(1)
    accelerator = None
    if sys.argv[2] != "single":
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
    parallel = "ddp" if sys.argv[2] in ("single", "accelerate") else sys.argv[2]
    state = (train_lora if sys.argv[3:] == ["lora"] else train)(accelerator, parallel=parallel)
    if accelerator is None or accelerator.is_main_process:
        torch.save(state, sys.argv[1])
    from prefrl.lm import distributed

    distributed.finish()
