"""`prefrl lm pipeline` end to end on a scaled-down offline default, stopped by a signal during PPO
and resumed: finished stages are kept, PPO goes on from its checkpoint, the report is written."""

import os
import signal

from prefrl.cli.logger import read_metrics
from prefrl.cli.main import main
from prefrl.lm.ppo import LMPPOTrainer

SMALL = [
    *("--num-demonstrations", "64", "--num-labels", "40"),
    *("--sft.batch-size", "32", "--sft.num-epochs", "1"),
    *("--rm.batch-size", "16", "--rm.num-epochs", "1"),
    *("--ppo.num-iterations", "3", "--ppo.batch-size", "8", "--ppo.minibatch-size", "4"),
]


def test_pipeline_stopped_during_ppo_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    run = tmp_path / "pipe"
    train_iteration = LMPPOTrainer.train_iteration

    def stop_at_second(self):  # Ctrl-C during the second PPO iteration
        if self.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return train_iteration(self)

    monkeypatch.setattr(LMPPOTrainer, "train_iteration", stop_at_second)
    assert main(["lm", "pipeline", *SMALL, "--run-dir", str(run)]) == 130
    assert f"prefrl lm pipeline --resume {run}" in " ".join(capsys.readouterr().err.split())
    assert (run / "sft" / "model" / "config.json").is_file() and (run / "rm" / "model").is_dir()
    assert [r["step"] for r in read_metrics(run / "ppo" / "metrics.jsonl")] == [8, 16]
    assert not (run / "report.md").exists() and not (run / "ppo" / "model").exists()
    sft_rows = read_metrics(run / "sft" / "metrics.jsonl")
    pairs = (run / "pairs.jsonl").read_text()

    resumed_at = []

    def count(self):
        resumed_at.append(self.iteration)
        return train_iteration(self)

    monkeypatch.setattr(LMPPOTrainer, "train_iteration", count)
    assert main(["lm", "pipeline", "--resume", str(run)]) == 0
    assert resumed_at == [2]  # PPO went on from its checkpoint: one iteration left
    said = " ".join(capsys.readouterr().err.split())
    assert f"{run / 'sft'} already finished" in said and f"{run / 'rm'} already finished" in said
    assert read_metrics(run / "sft" / "metrics.jsonl") == sft_rows  # not trained again
    assert [r["step"] for r in read_metrics(run / "ppo" / "metrics.jsonl")] == [8, 16, 24]
    assert (run / "pairs.jsonl").read_text() == pairs  # the same samples and labels, recomputed
    assert (run / "ppo" / "model" / "model.safetensors").is_file()
    assert "Gold score of the policy's samples" in (run / "report.md").read_text()
