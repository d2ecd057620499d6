"""`prefrl lm ...` end to end on a transformers checkpoint directory built here, and bad input: one
line on stderr, exit 2, nothing written."""

import json
import random
import sys

import pytest

from prefrl.cli.logger import read_metrics
from prefrl.cli.main import main
from prefrl.lm import tiny_task

PPO_TINY = ["--num-iterations", "2", "--batch-size", "8", "--minibatch-size", "4", "--update-epochs", "1"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    tokenizer = tiny_task.build_tokenizer(root / "base")
    tiny_task.build_tiny_model(tokenizer, seed=0, arch="llama").save_pretrained(str(root / "base"))
    rng = random.Random(0)
    sft = tiny_task.sft_records(rng, 64)
    prefs = [
        {"prompt": r["prompt"], "chosen": "the soup was great .", "rejected": r["completion"]} for r in sft
    ]
    return {
        "root": root,
        "base": str(root / "base"),
        "sft": write_jsonl(root / "sft.jsonl", sft),
        "prefs": write_jsonl(root / "prefs.jsonl", prefs),
        "prompts": write_jsonl(root / "prompts.jsonl", [{"prompt": r["prompt"]} for r in sft]),
    }


def test_checkpoint_directory_goes_through_sft_rm_ppo(files, tmp_path, capsys):
    sft_dir, rm_dir, ppo_dir = tmp_path / "sft", tmp_path / "rm", tmp_path / "ppo"
    assert (
        main(
            [
                "lm",
                "sft",
                "--model",
                files["base"],
                "--data",
                files["sft"],
                "--num-epochs",
                "1",
                "--run-dir",
                str(sft_dir),
            ]
        )
        == 0
    )
    assert (sft_dir / "model" / "config.json").is_file() and (sft_dir / "model" / "tokenizer.json").is_file()
    assert read_metrics(sft_dir / "metrics.jsonl")[-1]["lm/sft_loss"] > 0
    assert (
        main(
            [
                "lm",
                "rm",
                "--model",
                str(sft_dir / "model"),
                "--data",
                files["prefs"],
                "--eval-data",
                files["prefs"],
                "--run-dir",
                str(rm_dir),
            ]
        )
        == 0
    )
    assert (rm_dir / "model" / "reward_head.pt").is_file()
    assert (
        main(
            [
                "lm",
                "ppo",
                "--policy",
                str(sft_dir / "model"),
                "--reward-model",
                str(rm_dir / "model"),
                "--prompts",
                files["prompts"],
                "--gold-fn",
                "prefrl.lm.pipeline:gold_fn",
                *PPO_TINY,
                "--run-dir",
                str(ppo_dir),
            ]
        )
        == 0
    )
    rows = read_metrics(ppo_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [8, 16]
    assert {"lm/score", "lm/gold_score", "lm/kl", "lm/sqrt_kl"} <= set(rows[0])
    assert (ppo_dir / "model" / "model.safetensors").is_file()
    assert (ppo_dir / "plots" / "learning_curves.png").is_file()
    assert main(["lm", "ppo", "--resume", str(ppo_dir)]) == 0  # already finished: nothing added
    assert len(read_metrics(ppo_dir / "metrics.jsonl")) == 2
    # a run directory written before DeepSpeed (`fsdp: false`, no `devices`) still resumes
    saved = json.loads((sft_dir / "config.json").read_text())
    assert saved["config"].pop("devices") == {
        "parallel": "ddp",
        "mixed_precision": "no",
        "grad_accum_steps": 1,
    }
    (sft_dir / "config.json").write_text(json.dumps(saved | {"config": saved["config"] | {"fsdp": False}}))
    assert main(["lm", "sft", "--resume", str(sft_dir)]) == 0
    assert "already finished" in " ".join(capsys.readouterr().err.split())


def ppo_with_reward_fn(files, run):
    """`prefrl lm ppo` arguments: the base model, the gold score as a Python reward function."""
    argv = ["lm", "ppo", "--policy", files["base"], "--reward-fn", "prefrl.lm.pipeline:gold_fn"]
    return [*argv, "--prompts", files["prompts"], *PPO_TINY, "--run-dir", str(run)]


def test_ppo_with_a_python_reward_function(files, tmp_path):
    run = tmp_path / "run"
    assert main(ppo_with_reward_fn(files, run)) == 0
    assert len(read_metrics(run / "metrics.jsonl")) == 2


@pytest.fixture
def bad_module(tmp_path, monkeypatch):
    (tmp_path / "bad_rewards.py").write_text(
        "def nan(prompts, responses):\n    return [float('nan')] * len(responses)\n"
        "def short(prompts, responses):\n    return [0.0]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("bad_rewards", None)


def _no_eos_tokenizer(files, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(files["base"])
    tokenizer.eos_token = None
    path = tmp_path / "no_eos"
    tokenizer.save_pretrained(str(path))
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(files["base"]).save_pretrained(str(path))
    return str(path)


def _pad_is_eos(files, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(files["base"])
    tokenizer.pad_token = tokenizer.eos_token
    path = tmp_path / "pad_eos"
    tokenizer.save_pretrained(str(path))
    AutoModelForCausalLM.from_pretrained(files["base"]).save_pretrained(str(path))
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_column", "no 'completion' column"),
        ("empty_response", "empty response"),
        ("no_eos", "no EOS token"),
        ("pad_is_eos", "dedicated"),
        ("long_prompt", "exceeds the model's context"),
        ("nan_reward", "NaN"),
        ("wrong_shape", "shape"),
        ("missing_model", "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(case, message, files, tmp_path, capsys, bad_module):
    run = tmp_path / "run"
    root = files["root"]
    sft = ["lm", "sft", "--model", files["base"], "--run-dir", str(run)]
    ppo = [
        "lm",
        "ppo",
        "--policy",
        files["base"],
        "--prompts",
        files["prompts"],
        *PPO_TINY,
        "--run-dir",
        str(run),
    ]
    argv = {
        "missing_column": [*sft, "--data", write_jsonl(root / "a.jsonl", [{"prompt": "p", "answer": "x"}])],
        "empty_response": [
            *sft,
            "--data",
            write_jsonl(root / "b.jsonl", [{"prompt": "p", "completion": ""}]),
        ],
        "no_eos": [
            "lm",
            "sft",
            "--model",
            _no_eos_tokenizer(files, tmp_path),
            "--data",
            files["sft"],
            "--run-dir",
            str(run),
        ],
        "pad_is_eos": [
            "lm",
            "sft",
            "--model",
            _pad_is_eos(files, tmp_path),
            "--data",
            files["sft"],
            "--run-dir",
            str(run),
        ],
        "long_prompt": [
            *ppo[:5],
            write_jsonl(root / "c.jsonl", [{"prompt": "review " * 60}]),
            *ppo[6:],
            "--reward-fn",
            "bad_rewards:nan",
        ],
        "nan_reward": [*ppo, "--reward-fn", "bad_rewards:nan"],
        "wrong_shape": [*ppo, "--reward-fn", "bad_rewards:short"],
        "missing_model": [
            "lm",
            "sft",
            "--model",
            str(tmp_path / "nowhere"),
            "--data",
            files["sft"],
            "--run-dir",
            str(run),
        ],
    }[case]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not run.exists()


def test_ppo_resumed_from_a_checkpoint_continues_exactly(files, tmp_path):
    from prefrl.checkpoint import load_checkpoint, save_checkpoint
    from prefrl.cli.lm_commands import PPOLMCommand, build_ppo
    from prefrl.lm.ppo import LMPPOConfig

    config = LMPPOConfig(num_iterations=2, batch_size=8, minibatch_size=4, update_epochs=1)
    cmd = PPOLMCommand(
        policy=files["base"], prompts=files["prompts"], reward_fn="prefrl.lm.pipeline:gold_fn", config=config
    )
    uninterrupted = build_ppo(cmd)
    expected = [uninterrupted.train_iteration() for _ in range(2)][1]
    first = build_ppo(cmd)
    first.train_iteration()
    save_checkpoint(tmp_path / "last.pt", {"trainer": first.state_dict()})
    resumed = build_ppo(cmd)
    resumed.load_state_dict(load_checkpoint(tmp_path / "last.pt")["trainer"])
    got = resumed.train_iteration()
    for key in ("lm/score", "lm/kl", "lm/policy_loss", "lm/value_loss", "lm/response_length"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    assert resumed.done


@pytest.mark.slow
def test_ppo_runs_under_two_processes(files, tmp_path):
    """`torchrun --nproc_per_node 2 -m prefrl lm ppo ...`: both ranks train, only rank 0 writes."""
    import os
    import subprocess

    run = tmp_path / "run"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    argv = ["-m", "prefrl", *ppo_with_reward_fn(files, run)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([*launcher, *argv], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(run / "metrics.jsonl")
    assert len(rows) == 2 and all(r["lm/response_length"] > 0 for r in rows)
    assert (run / "model" / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def said(result):
    """A process's output with rich's line wrapping undone."""
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["fsdp", "zero3"])
def test_sft_rm_and_ppo_run_fully_sharded_under_two_processes(files, tmp_path, parallel):
    """`torchrun --nproc_per_node 2 -m prefrl lm sft|rm|ppo --parallel fsdp|zero3` (a Llama-architecture
    checkpoint): all three train sharded, the last checkpoint gathers the whole model, rank 0 saves it,
    and a resume loads it on every rank."""
    import os
    import subprocess

    import torch
    from transformers import AutoModelForCausalLM

    from prefrl.checkpoint import load_checkpoint
    from prefrl.lm.reward_model import ScalarRewardModel

    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    small = ["--batch-size", "8", "--num-epochs", "1", "--parallel", parallel]
    ppo = ["--policy", str(tmp_path / "sft" / "model"), "--prompts", files["prompts"], *PPO_TINY]
    ppo += ["--parallel", parallel]
    stages = [
        ("sft", ["--model", files["base"], "--data", files["sft"], *small], 8),  # 64 records / 8
        ("rm", ["--model", str(tmp_path / "sft" / "model"), "--data", files["prefs"], *small], 8),
        ("ppo", [*ppo, "--reward-model", str(tmp_path / "rm" / "model")], 2),
    ]
    for name, args, rows in stages:
        argv = ["-m", "prefrl", "lm", name, *args, "--run-dir", str(tmp_path / name)]
        result = subprocess.run([*launcher, *argv], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"({parallel} over 2 processes)" in said(result)
        assert "WARNING" not in said(result)  # DeepSpeed is told it is on a CPU (no "found no GPU")
        assert len(read_metrics(tmp_path / name / "metrics.jsonl")) == rows
    resume = ["-m", "prefrl", "lm", "rm", "--resume", str(tmp_path / "rm")]  # every rank loads
    result = subprocess.run([*launcher, *resume], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "already finished" in said(result)
    if parallel == "zero3":  # ZeRO's optimizer state is one partition per process
        alone = subprocess.run([sys.executable, *resume], capture_output=True, text=True, env=env)
        assert alone.returncode == 2
        assert "resume with --parallel zero3 on 2 processes (torchrun --nproc_per_node 2)" in said(alone)
    saved = ScalarRewardModel.load(tmp_path / "rm" / "model").state_dict()
    final = load_checkpoint(tmp_path / "rm" / "checkpoints" / "last.pt")["trainer"]["model"]
    assert final.keys() == saved.keys()
    for key in final.keys() - {"shift"}:  # the saved model is shifted after training
        assert torch.equal(saved[key], final[key]), key
    policy = AutoModelForCausalLM.from_pretrained(str(tmp_path / "ppo" / "model")).state_dict()
    final = load_checkpoint(tmp_path / "ppo" / "checkpoints" / "last.pt")["trainer"]["policy"]
    assert final.keys() == policy.keys() and all(torch.equal(policy[k], final[k]) for k in final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ppo", "rm", "sft"]


@pytest.mark.slow
def test_a_signal_to_one_process_stops_all_after_the_same_step_with_a_checkpoint(files, tmp_path):
    """Under ZeRO-2 (a checkpoint every process takes part in), SIGINT to rank 1 alone: both ranks
    stop after step 3 and save it together (no hang), and a resume trains the remaining steps."""
    import os
    import subprocess
    from pathlib import Path

    from prefrl.checkpoint import load_checkpoint

    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = tmp_path / "sft"
    args = ["lm", "sft", "--model", files["base"], "--data", files["sft"], "--batch-size", "8"]
    args += ["--num-epochs", "1", "--parallel", "zero2", "--checkpoint-every", "100", "--run-dir", str(run)]
    script = Path(__file__).with_name("stop_script.py")
    result = subprocess.run(
        [*launcher, str(script), *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode != 0 and f"prefrl lm sft --resume {run}" in said(result), result.stderr[-3000:]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["global_step"] == 3
    assert len(read_metrics(run / "metrics.jsonl")) == 3
    resume = [*launcher, "-m", "prefrl", "lm", "sft", "--resume", str(run)]
    result = subprocess.run(resume, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, 9))
    assert (run / "model" / "config.json").is_file()


def test_a_saved_command_from_before_deepspeed_is_upgraded():
    from prefrl.cli.lm import upgrade_saved

    assert upgrade_saved({"model": "m", "fsdp": True}) == {"model": "m", "devices": {"parallel": "fsdp"}}
    assert upgrade_saved({"model": "m", "fsdp": False}) == {"model": "m", "devices": {"parallel": "ddp"}}
    today = {"model": "m", "devices": {"parallel": "zero2", "mixed_precision": "bf16"}}
    assert upgrade_saved(today) == today


def test_sft_with_bf16_autocast_from_the_command_line(files, tmp_path, monkeypatch):
    """`--mixed-precision bf16` reaches the trainer (its matrix products run in bf16) and is saved with
    the run, so a resume keeps it."""
    import torch

    from prefrl.lm import sft as sft_module

    seen = set()
    iteration = sft_module.SFTTrainer.train_iteration

    def recording(self):
        if not seen:
            for module in self.model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
        return iteration(self)

    run = tmp_path / "sft"
    argv = ["lm", "sft", "--model", files["base"], "--data", files["sft"], "--num-epochs", "1"]
    monkeypatch.setattr(sft_module.SFTTrainer, "train_iteration", recording)
    assert main([*argv, "--mixed-precision", "bf16", "--run-dir", str(run)]) == 0
    assert seen == {torch.bfloat16}
    saved = json.loads((run / "config.json").read_text())["config"]["devices"]
    assert saved == {"parallel": "ddp", "mixed_precision": "bf16", "grad_accum_steps": 1}


def test_a_saved_ppo_command_with_the_old_lm_names_resumes_under_the_shared_names():
    from prefrl.cli.lm import upgrade_saved
    from prefrl.lm.ppo import LMPPOConfig
    from prefrl.validation import config_from_dict

    old = {"policy": "p", "config": {"num_ppo_epochs": 2, "whiten_advantages": False, "value_clip_coef": 0.2}}
    new = upgrade_saved(old)
    assert new == {"policy": "p", "config": {"update_epochs": 2, "norm_adv": False, "clip_vloss": True}}
    config = config_from_dict(LMPPOConfig, new["config"])
    assert (config.update_epochs, config.norm_adv, config.clip_vloss) == (2, False, True)
    assert upgrade_saved({"config": {"value_clip_coef": None}})["config"] == {"clip_vloss": False}
    with pytest.raises(ValueError, match=r"clipped the value loss by 0\.5"):
        upgrade_saved({"config": {"value_clip_coef": 0.5}})


def test_dpo_from_the_command_line_trains_saves_and_reports_held_out_accuracy(files, tmp_path, capsys):
    run = tmp_path / "dpo"
    argv = ["lm", "dpo", "--model", files["base"], "--data", files["prefs"], "--eval-data", files["prefs"]]
    assert main([*argv, "--batch-size", "16", "--num-epochs", "2", "--run-dir", str(run)]) == 0
    rows = read_metrics(run / "metrics.jsonl")
    assert len(rows) == 8 and rows[0]["lm/dpo_loss"] > rows[-1]["lm/dpo_loss"]
    assert (run / "model" / "config.json").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert "held-out accuracy (implied reward): " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--beta", "0"], "beta must be > 0"),
        (["--loss", "ipo", "--label-smoothing", "0.1"], "drop --label-smoothing"),
    ],
)
def test_dpo_bad_input_is_one_line_and_writes_nothing(files, tmp_path, capsys, extra, message):
    run = tmp_path / "dpo"
    argv = ["lm", "dpo", "--model", files["base"], "--data", files["prefs"], "--run-dir", str(run), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err and not run.exists()


def test_dpo_refuses_data_without_comparisons(files, tmp_path, capsys):
    run = tmp_path / "dpo"
    assert main(["lm", "dpo", "--model", files["base"], "--data", files["sft"], "--run-dir", str(run)]) == 2
    assert "chosen" in capsys.readouterr().err and not run.exists()


@pytest.mark.parametrize("estimator", ["rloo", "grpo", "reinforce++"])
def test_critic_free_estimators_from_the_command_line(files, tmp_path, estimator):
    run = tmp_path / estimator
    argv = ["lm", "ppo", "--policy", files["base"], "--prompts", files["prompts"]]
    argv += ["--reward-fn", "prefrl.lm.pipeline:gold_fn", *PPO_TINY, "--estimator", estimator]
    assert main([*argv, "--group-size", "4", "--run-dir", str(run)]) == 0
    rows = read_metrics(run / "metrics.jsonl")
    assert len(rows) == 2 and "lm/value_loss" not in rows[-1]


def test_a_reward_function_in_the_current_directory_is_found(files, tmp_path, monkeypatch):
    (tmp_path / "myreward_here.py").write_text(
        "def score(prompts, responses):\n    return [1.0] * len(responses)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    argv = ["lm", "ppo", "--policy", files["base"], "--prompts", files["prompts"], *PPO_TINY]
    assert main([*argv, "--reward-fn", "myreward_here:score", "--run-dir", str(tmp_path / "run")]) == 0
    assert read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]["lm/score"] == 1.0


def test_rm_holds_out_a_share_by_default_and_ppo_warns_near_chance(files, tmp_path, capsys):
    rm_dir = tmp_path / "rm"
    assert (
        main(["lm", "rm", "--model", files["base"], "--data", files["prefs"], "--run-dir", str(rm_dir)]) == 0
    )
    err = " ".join(capsys.readouterr().err.split())
    assert "held-out accuracy: " in err and "on 6 comparisons" in err  # 10% of 64
    meta_file = rm_dir / "model" / "reward_model.json"
    meta = json.loads(meta_file.read_text())
    assert 0 <= meta["held_out_accuracy"] <= 1
    meta_file.write_text(json.dumps(meta | {"held_out_accuracy": 0.52}))  # as a reward model near chance
    argv = ["lm", "ppo", "--policy", files["base"], "--reward-model", str(rm_dir / "model")]
    assert main([*argv, "--prompts", files["prompts"], *PPO_TINY, "--run-dir", str(tmp_path / "ppo")]) == 0
    assert "held-out accuracy is 0.52, near chance" in " ".join(capsys.readouterr().err.split())


def test_chat_data_needs_a_chat_template_and_trains_with_one(files, tmp_path, capsys):
    from prefrl.lm.loading import load_tokenizer

    rows = [
        {
            "messages": [
                {"role": "user", "content": r["prompt"]},
                {"role": "assistant", "content": r["completion"]},
            ]
        }
        for r in tiny_task.sft_records(random.Random(0), 32)
    ]
    data = write_jsonl(tmp_path / "chat.jsonl", rows)
    run = tmp_path / "sft"
    assert main(["lm", "sft", "--model", files["base"], "--data", data, "--run-dir", str(run)]) == 2
    assert "no chat template" in capsys.readouterr().err and not run.exists()
    tokenizer = load_tokenizer(files["base"])
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    chat_model = tmp_path / "chat-model"
    import shutil

    shutil.copytree(files["base"], chat_model)
    tokenizer.save_pretrained(str(chat_model))
    assert (
        main(
            [
                "lm",
                "sft",
                "--model",
                str(chat_model),
                "--data",
                data,
                "--num-epochs",
                "1",
                "--run-dir",
                str(run),
            ]
        )
        == 0
    )
    assert (run / "model" / "config.json").is_file()


def test_people_label_a_models_answers_in_the_app_and_the_reward_model_learns_from_them(
    files, tmp_path, capsys
):
    from fastapi.testclient import TestClient

    from prefrl.labelling.app import create_app
    from prefrl.preferences.queue import LabelQueue
    from prefrl.preferences.store import PreferenceStore

    pairs = tmp_path / "pairs"
    argv = ["lm", "pairs", "--model", files["base"], "--prompts", files["prompts"], "--num-pairs", "24"]
    assert main([*argv, "--run-dir", str(pairs)]) == 0
    assert f"prefrl label {pairs}" in " ".join(capsys.readouterr().err.split())
    assert (
        main(["lm", "rm", "--model", files["base"], "--data", str(pairs), "--run-dir", str(tmp_path / "x")])
        == 2
    )
    assert "no answered text pairs yet" in capsys.readouterr().err and not (tmp_path / "x").exists()
    with PreferenceStore(pairs / "preferences.sqlite") as store:
        token = LabelQueue(store).add_labeller("alice")
        num = store.num_pending()
    assert num >= 20
    with TestClient(create_app(pairs / "preferences.sqlite", render_ahead=None)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(num):  # a person who prefers the shorter answer
            query = client.get("/api/next", headers=headers).json()["query"]
            assert query["kind"] == "text" and query["prompt"] and len(query["responses"]) == 2
            left, right = query["responses"]
            choice = "left" if len(left) < len(right) else "right" if len(right) < len(left) else "equal"
            assert (
                client.post(
                    "/api/answer", json={"query_id": query["id"], "choice": choice}, headers=headers
                ).status_code
                == 200
            )
    for command, run in (("rm", tmp_path / "rm"), ("dpo", tmp_path / "dpo")):
        assert (
            main(["lm", command, "--model", files["base"], "--data", str(pairs), "--run-dir", str(run)]) == 0
        )
        assert (run / "model" / "config.json").is_file()


def test_people_rank_four_answers_and_the_reward_model_learns_from_the_rankings(files, tmp_path, capsys):
    import json

    from fastapi.testclient import TestClient

    from prefrl.labelling.app import create_app
    from prefrl.preferences.queue import LabelQueue
    from prefrl.preferences.store import PreferenceStore

    ranks = tmp_path / "ranks"
    argv = ["lm", "pairs", "--model", files["base"], "--prompts", files["prompts"], "--num-pairs", "16"]
    assert main([*argv, "--num-answers", "4", "--run-dir", str(ranks)]) == 0
    assert "rankings of 4 answers for people" in " ".join(capsys.readouterr().err.split())
    assert main([*argv, "--num-answers", "10", "--run-dir", str(tmp_path / "y")]) == 2
    assert "num_answers must be 1 to 9" in capsys.readouterr().err and not (tmp_path / "y").exists()
    with PreferenceStore(ranks / "preferences.sqlite") as store:
        token = LabelQueue(store).add_labeller("alice")
        num = store.num_pending()
    assert num >= 12
    with TestClient(create_app(ranks / "preferences.sqlite", render_ahead=None)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(num):  # a person who prefers shorter answers
            query = client.get("/api/next", headers=headers).json()["query"]
            assert query["kind"] == "rank" and query["prompt"] and len(query["responses"]) == 4
            order = sorted(range(4), key=lambda k: len(query["responses"][k]))
            bad = client.post(
                "/api/answer", json={"query_id": query["id"], "ranking": order[:3]}, headers=headers
            )
            assert bad.status_code == 422 and "each of its 4 items once" in bad.json()["detail"]
            saved = client.post(
                "/api/answer", json={"query_id": query["id"], "ranking": order}, headers=headers
            )
            assert saved.status_code == 200
    with PreferenceStore(ranks / "preferences.sqlite") as store:
        rankings = store.text_rankings()
        assert len(rankings) == num and all(len(r.responses) == 4 for r in rankings)
        assert all([len(a) for a in r.responses] == sorted(len(a) for a in r.responses) for r in rankings)
    for command, run in (("rm", tmp_path / "rm"), ("dpo", tmp_path / "dpo")):
        assert (
            main(["lm", command, "--model", files["base"], "--data", str(ranks), "--run-dir", str(run)]) == 0
        )
        assert (run / "model" / "config.json").is_file()
    rows = [json.loads(line) for line in (tmp_path / "rm" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "lm/rm_loss" in r]
    assert len(steps) == 1  # the rankings as rankings (16, one batch), not as their 96 pairs (3 batches)


def test_people_rate_single_answers_and_the_reward_model_learns_from_the_ratings(files, tmp_path, capsys):
    from fastapi.testclient import TestClient

    from prefrl.labelling.app import create_app
    from prefrl.preferences.queue import LabelQueue
    from prefrl.preferences.store import PreferenceStore

    rated = tmp_path / "rated"
    argv = ["lm", "pairs", "--model", files["base"], "--prompts", files["prompts"], "--num-pairs", "40"]
    assert main([*argv, "--num-answers", "1", "--rating-classes", "4", "--run-dir", str(rated)]) == 0
    assert "answers to rate for people" in " ".join(capsys.readouterr().err.split())
    with PreferenceStore(rated / "preferences.sqlite") as store:
        token = LabelQueue(store).add_labeller("alice")
        num = store.num_pending()
    with TestClient(create_app(rated / "preferences.sqlite", render_ahead=None)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(num):  # a person who likes short answers: 3 for the shortest, 0 for the longest
            query = client.get("/api/next", headers=headers).json()["query"]
            assert query["kind"] == "rate" and query["classes"] == 4 and query["prompt"]
            assert query["description"].startswith("How good is this response to the prompt?")
            rating = max(0, 3 - len(query["response"].split()) // 3)
            saved = client.post(
                "/api/answer", json={"query_id": query["id"], "rating": rating}, headers=headers
            )
            assert saved.status_code == 200
    with PreferenceStore(rated / "preferences.sqlite") as store:
        assert len(store.text_ratings()) == num and store.text_comparisons() == []
    run = tmp_path / "rm"
    assert main(["lm", "rm", "--model", files["base"], "--data", str(rated), "--run-dir", str(run)]) == 0
    assert (run / "model" / "config.json").is_file()
    assert "held-out accuracy" in capsys.readouterr().err  # the pairs of held-out answers rated apart


def test_lora_from_the_command_line_for_sft_rm_dpo_and_ppo(files, tmp_path, capsys):
    sft = tmp_path / "sft"
    lora = ["--lora.rank", "4"]
    assert (
        main(
            [
                "lm",
                "sft",
                "--model",
                files["base"],
                "--data",
                files["sft"],
                "--num-epochs",
                "1",
                *lora,
                "--run-dir",
                str(sft),
            ]
        )
        == 0
    )
    assert (sft / "model" / "config.json").is_file() and not (sft / "model" / "adapter_config.json").exists()
    rm = tmp_path / "rm"
    assert (
        main(
            ["lm", "rm", "--model", str(sft / "model"), "--data", files["prefs"], *lora, "--run-dir", str(rm)]
        )
        == 0
    )
    assert (rm / "model" / "reward_head.pt").is_file() and not (rm / "model" / "adapter_config.json").exists()
    argv = ["lm", "dpo", "--model", str(sft / "model"), "--data", files["prefs"], "--num-epochs", "1", *lora]
    assert main([*argv, "--run-dir", str(tmp_path / "dpo")]) == 0
    argv = ["lm", "ppo", "--policy", str(sft / "model"), "--prompts", files["prompts"], *PPO_TINY, *lora]
    assert main([*argv, "--reward-fn", "prefrl.lm.pipeline:gold_fn", "--run-dir", str(tmp_path / "ppo")]) == 0
    assert (tmp_path / "ppo" / "model" / "config.json").is_file()
    bad = [
        "lm",
        "sft",
        "--model",
        files["base"],
        "--data",
        files["sft"],
        *lora,
        "--lora.target-modules",
        "nope",
    ]
    assert main([*bad, "--run-dir", str(tmp_path / "bad")]) == 2
    assert "are not layers of this model" in capsys.readouterr().err and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("model_id", ["gpt2", "some-org/some-model"])
def test_hub_ids_resolve_as_transformers_does_and_fail_fast_offline(model_id, tmp_path, monkeypatch, capsys):
    import time

    from prefrl.lm import loading

    monkeypatch.setattr(loading, "hub_cached", lambda repo: False)
    monkeypatch.setattr(loading, "hub_reachable", lambda: False)  # as on these machines
    start = time.perf_counter()
    argv = [
        "lm",
        "sft",
        "--model",
        model_id,
        "--data",
        str(tmp_path / "d.jsonl"),
        "--run-dir",
        str(tmp_path / "r"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        f"{model_id!r} is not a local directory, not in the Hugging Face cache" in err
        and "\n" not in err.strip()
    )
    assert time.perf_counter() - start < 5 and not (tmp_path / "r").exists()
    monkeypatch.setattr(loading, "hub_cached", lambda repo: True)
    assert loading.model_path(model_id) == model_id  # a cached id loads as an id


def test_segment_rewards_from_the_command_line(files, tmp_path, capsys):
    run = tmp_path / "seg"
    argv = [
        "lm",
        "ppo",
        "--policy",
        files["base"],
        "--prompts",
        files["prompts"],
        *PPO_TINY,
        "--reward-level",
        "segment",
    ]
    assert main([*argv, "--reward-fn", "prefrl.lm.pipeline:segment_gold_fn", "--run-dir", str(run)]) == 0
    assert len(read_metrics(run / "metrics.jsonl")) == 2
    wrong = [*argv, "--reward-fn", "prefrl.lm.pipeline:gold_fn", "--run-dir", str(tmp_path / "bad")]
    assert main(wrong) == 2  # a sequence-level function at the segment level: one line, nothing written
    assert (
        "one list of floats per response" in " ".join(capsys.readouterr().err.split())
        and not (tmp_path / "bad").exists()
    )
