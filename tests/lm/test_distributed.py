"""Data parallelism: 2 CPU processes (gloo) make the same update as 1 process on the same global batch
(SFT, reward model and PPO), replicated (DDP), sharded (FSDP2) or partitioned (DeepSpeed ZeRO 1-3)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("ddp_script.py")


def run(args, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(SCRIPT.parent))
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def one_and_two_processes(tmp_path, mode, *extra):
    """The script's saved results alone and under 2 gloo processes in ``mode``."""
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    run([sys.executable, str(SCRIPT), str(one), "single", *extra], tmp_path)
    # accelerate's own launcher needs MPI for several CPU processes; torchrun starts the same
    # gloo process group that Accelerator(cpu=True) joins (as `accelerate launch` does on GPUs)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run([*launcher, str(SCRIPT), str(two), mode, *extra], tmp_path)
    a, b = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    assert (a["world"], b["world"]) == (1, 2)
    moved = [k for k, v in a["sft"].items() if not torch.allclose(v, a["initial"][k])]
    assert len(moved) > (3 if extra else 10)  # training changed the weights (LoRA: 2 x 2 adapter
    # matrices), so equality below means something
    return a, b


def assert_same_training(a, b, metrics=("lm/score", "lm/kl", "lm/response_length")):
    """1 and 2 processes end SFT, the reward model and PPO with the same weights (PPO moved them),
    saw the same rollouts, and a resumed SFT trainer continued exactly (model and optimizer state)."""
    ppo_moved = [k for k, v in a["ppo_policy"].items() if not torch.allclose(v, a["initial"][k])]
    assert len(ppo_moved) > 10
    for part in ("sft", "rm", "ppo_policy", "ppo_critic"):
        assert a[part].keys() == b[part].keys()
        for key, value in a[part].items():
            assert torch.allclose(value, b[part][key], atol=1e-5), (part, key)
    for ma, mb in zip(a["ppo_metrics"], b["ppo_metrics"], strict=True):
        for key in metrics:
            assert abs(ma[key] - mb[key]) < 1e-5, (key, ma[key], mb[key])
    assert a["resume_diff"] == 0.0 and b["resume_diff"] == 0.0


@pytest.mark.slow
def test_two_processes_make_the_same_update_as_one(tmp_path):
    a, b = one_and_two_processes(tmp_path, "accelerate")
    # PPO: each process sampled half of every batch (2 iterations of 8, plus nothing else) ...
    assert a["ppo_sampled_rows"] == [16] and b["ppo_sampled_rows"] == [8, 8]
    # ... and the gathered batches are the single process's: same scores, KL and gold
    gathered = ("lm/score", "lm/gold_score", "lm/kl", "lm/response_length", "lm/eos_rate")
    assert_same_training(a, b, gathered)


@pytest.mark.slow
def test_fully_sharded_two_processes_make_the_same_update_as_one(tmp_path):
    """FSDP2 (`parallel="fsdp"`): each of 2 gloo processes holds half of every parameter, and SFT,
    the reward model and PPO (with PPO-ptx; sampling synchronised across ranks) end with the single
    process's weights on the same global batch."""
    a, b = one_and_two_processes(tmp_path, "fsdp")
    assert b["local_fraction"] == pytest.approx(0.5, abs=0.01)  # sharded, not replicated
    assert b["ppo_sampled_rows"] == [8, 8]
    assert_same_training(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [1, 2, 3])
def test_deepspeed_zero_two_processes_make_the_same_update_as_one(tmp_path, stage):
    """DeepSpeed ZeRO stage 1 (optimizer state partitioned), 2 (and gradients) and 3 (and weights;
    sampling synchronised): SFT, the reward model and PPO with PPO-ptx end with the single process's
    weights, and resuming restores every rank's optimizer partition exactly."""
    a, b = one_and_two_processes(tmp_path, f"zero{stage}")
    if stage == 3:
        assert b["local_fraction"] == pytest.approx(0.5, abs=0.01)  # partitioned, not replicated
    assert b["ppo_sampled_rows"] == [8, 8]
    assert_same_training(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fsdp", "zero3"])
def test_lora_adapters_sharded_over_two_processes_make_the_same_update_as_one(tmp_path, mode):
    """LoRA (`--lora.rank`) under FSDP2 and ZeRO-3: SFT and PPO (reference = the policy with its
    adapters off) train only the adapters and end with the single process's weights."""
    a, b = one_and_two_processes(tmp_path, mode, "lora")
    for part in ("sft", "ppo_policy"):
        trained = [k for k, v in a[part].items() if not torch.allclose(v, a["initial"][k])]
        assert trained and all(".lora_" in k for k in trained), trained  # the adapters, nothing else
        for key, value in a[part].items():
            assert torch.allclose(value, b[part][key], atol=1e-5), (part, key)
    assert a["ppo_metrics"][-1]["lm/kl"] > 0  # the adapters moved the policy away from its reference
    for ma, mb in zip(a["ppo_metrics"], b["ppo_metrics"], strict=True):
        for key in ("lm/score", "lm/kl", "lm/response_length"):
            assert abs(ma[key] - mb[key]) < 1e-5, (key, ma[key], mb[key])
