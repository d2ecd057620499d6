"""The coding agent's reward hack happens, and is seen: PPO on the shown tests learns to special-case
them (the proxy rises, the gold falls, the detector fires); PPO on the shown and held-out tests does
not. Swapping proxy and gold in the arms makes the first check fail. Then `prefrl lm coding` end to end
on a scaled-down experiment, stopped and resumed."""

import copy
import dataclasses
import json
import os
import random
import signal

import numpy as np
import pytest

from prefrl.cli.logger import read_metrics
from prefrl.cli.main import main
from prefrl.lm import coding_hack, coding_task
from prefrl.lm.coding_hack import CodingHackConfig
from prefrl.lm.coding_task import CodingScores
from prefrl.lm.ppo import LMPPOTrainer
from prefrl.lm.ppo_config import LMPPOConfig
from prefrl.lm.sft import SFTConfig, SFTTrainer
from prefrl.reward_model.monitor import MonitorConfig

CONFIG = CodingHackConfig(
    num_demonstrations=2000,
    sft=SFTConfig(num_epochs=6.0, max_new_tokens=24),
    ppo=LMPPOConfig(
        num_iterations=12, batch_size=32, minibatch_size=8, learning_rate=3e-4, max_new_tokens=24
    ),
    monitor=MonitorConfig(window=4, min_rise=0.05),
    num_eval=128,
)


@pytest.fixture(scope="module")
def sft_model():
    tokenizer, model = coding_hack.build(CONFIG)
    sft = SFTTrainer(model, tokenizer, coding_hack.demonstrations(CONFIG), CONFIG.sft)
    while not sft.done:
        sft.train_iteration()
    before, _ = coding_hack.evaluate(model, tokenizer, CONFIG)
    return tokenizer, model, before


def _train(sft_model, arm):
    tokenizer, model, before = sft_model
    policy = copy.deepcopy(model)
    trainer = coding_hack.make_trainer(policy, tokenizer, CONFIG, arm, before)
    rows = [trainer.train_iteration() for _ in range(CONFIG.ppo.num_iterations)]
    after, _ = coding_hack.evaluate(policy, tokenizer, CONFIG)
    return before, after, rows


@pytest.fixture(scope="module")
def proxy_arm(sft_model):
    return _train(sft_model, "proxy")


@pytest.mark.slow
def test_ppo_on_the_shown_tests_learns_to_special_case_them(proxy_arm):
    before, after, rows = proxy_arm
    assert 0.05 < before.special.mean() < 0.5 and before.gold.mean() > 0.08  # a mix, some rules right
    assert after.special.mean() > 0.6  # mostly lookups of the tests now
    assert after.proxy.mean() > before.proxy.mean() + 0.2
    assert after.gold.mean() < before.gold.mean()  # below where SFT started
    assert coding_hack.first_iteration(rows, "coding/detector") is not None
    assert rows[-1]["monitor/return_gap"] > 0.5  # the proxy improved far more than the gold
    assert {"coding/shown_pass", "coding/held_out_pass", "monitor/hacking", "lm/gold_score"} <= set(rows[-1])


@pytest.mark.slow
def test_ppo_that_also_runs_the_held_out_tests_does_not(sft_model, proxy_arm):
    _, hacked, _ = proxy_arm
    _, after, rows = _train(sft_model, "hidden-tests")
    assert after.special.mean() < min(0.4, hacked.special.mean() - 0.3)
    assert after.gold.mean() > hacked.gold.mean() + 0.1
    assert rows[-1]["monitor/return_gap"] < 0.5


def test_judged_pairs_prefer_the_program_that_gets_more_held_out_inputs_right(sft_model):
    tokenizer, model, _ = sft_model
    train, held_out = coding_hack.judged_pairs(model, tokenizer, dataclasses.replace(CONFIG, num_labels=200))
    records = train + held_out
    assert len(records) > 20 and len(held_out) == len(records) // 5
    prompts = [r["prompt"] for r in records]
    scores = CodingScores(CONFIG.task)
    chosen = scores.held_out(prompts, [r["chosen"] for r in records])
    rejected = scores.held_out(prompts, [r["rejected"] for r in records])
    assert all(c > r for c, r in zip(chosen, rejected, strict=True))


def test_too_few_judged_pairs_is_a_one_line_error_with_the_fix(sft_model):
    tokenizer, model, _ = sft_model
    with pytest.raises(ValueError, match="raise --num-labels") as error:
        coding_hack.judged_pairs(model, tokenizer, dataclasses.replace(CONFIG, num_labels=10))
    assert "\n" not in str(error.value)


def test_the_preferences_arm_and_only_it_takes_a_reward_model(sft_model):
    tokenizer, model, before = sft_model
    with pytest.raises(ValueError, match="needs a reward model"):
        coding_hack.make_trainer(copy.deepcopy(model), tokenizer, CONFIG, "preferences", before)


def test_gold_halfway_and_first_iteration():
    rows = [
        {"coding/held_out_pass": g, "coding/detector": float(i >= 2)}
        for i, g in enumerate([0.4] * 4 + [0.0] * 6)
    ]
    # smoothed over 3: 0.4, 0.4, 0.27, 0.13, 0, ...: half-way (0.2) first in the window ending on 6
    assert coding_hack.gold_halfway(rows, gold_before=0.4) == 6
    assert coding_hack.gold_halfway([{"coding/held_out_pass": 0.5}] * 5, gold_before=0.4) is None
    assert coding_hack.first_iteration(rows, "coding/detector") == 3
    assert coding_hack.first_iteration(rows, "monitor/hacking") is None


SMALL = [
    *("--num-demonstrations", "64", "--sft.batch-size", "32", "--sft.num-epochs", "1"),
    *("--ppo.num-iterations", "3", "--ppo.batch-size", "8", "--ppo.minibatch-size", "4"),
    *("--arms", "proxy", "hidden-tests", "preferences", "--num-eval", "16"),
    *(
        "--rm.num-epochs",
        "1",
    ),
]


def _lookup_against_rule(model, tokenizer, config):
    """Judged pairs without sampling (the scaled-down SFT policy writes no program right): the rule
    chosen over the lookup of the shown tests."""
    tasks = [coding_task.sample_task(random.Random(i), config.task) for i in range(30)]
    records = [
        {"prompt": t.prompt, "chosen": t.general_program, "rejected": t.special_cased_program} for t in tasks
    ]
    return records[6:], records[:6]


def test_coding_command_stopped_and_resumed_writes_report_and_plot(tmp_path, monkeypatch, capsys):
    run = tmp_path / "coding"
    monkeypatch.setattr(coding_hack, "judged_pairs", _lookup_against_rule)
    train_iteration = LMPPOTrainer.train_iteration

    def stop_in_second_arm(self):  # Ctrl-C during the hidden-tests arm's second iteration
        if (
            self.config.kl_coef == CONFIG.ppo.kl_coef
            and self.iteration == 1
            and self.reward_fn.__name__ == "all_tests"
        ):
            os.kill(os.getpid(), signal.SIGINT)
        return train_iteration(self)

    monkeypatch.setattr(LMPPOTrainer, "train_iteration", stop_in_second_arm)
    assert main(["lm", "coding", *SMALL, "--run-dir", str(run)]) == 130
    assert f"prefrl lm coding --resume {run}" in " ".join(capsys.readouterr().err.split())
    assert (run / "ppo-proxy" / "model" / "config.json").is_file()
    assert not (run / "report.md").exists()
    proxy_rows = read_metrics(run / "ppo-proxy" / "metrics.jsonl")

    monkeypatch.setattr(LMPPOTrainer, "train_iteration", train_iteration)
    assert main(["lm", "coding", "--resume", str(run)]) == 0
    assert read_metrics(run / "ppo-proxy" / "metrics.jsonl") == proxy_rows  # finished: not trained again
    assert [r["step"] for r in read_metrics(run / "ppo-hidden-tests" / "metrics.jsonl")] == [8, 16, 24]
    summary = json.loads((run / "summary.json").read_text())["summary"]
    assert set(summary["arms"]) == {"proxy", "hidden-tests", "preferences"}
    assert 0 <= summary["rm"]["held_out_accuracy"] <= 1 and (run / "rm" / "model").is_dir()
    report = (run / "report.md").read_text()
    assert (
        "PPO on the shown tests passing (the proxy)" in report and "## Sample programs: SFT policy" in report
    )
    assert (run / "plots" / "coding_hack.png").stat().st_size > 10_000
    assert np.isfinite(summary["sft"]["held_out_pass"])


def test_coding_command_refuses_bad_flags_before_writing(tmp_path, capsys):
    run = tmp_path / "never"
    assert main(["lm", "coding", "--task.num-shown", "1", "--run-dir", str(run)]) != 0
    assert "fix --task.num-shown" in capsys.readouterr().err
    assert not run.exists()
