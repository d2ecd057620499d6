"""Run by tests/lm/test_lm_cli.py under torchrun: `prefrl lm ARGS` in which only rank 1 is sent
SIGINT, during its third training step."""

import os
import signal
import sys

from prefrl.cli.main import main
from prefrl.lm.sft import SFTTrainer

step = SFTTrainer.train_iteration


def interrupted_on_rank_1(self):
    if self.step == 2 and os.environ.get("RANK") == "1":
        os.kill(os.getpid(), signal.SIGINT)
    return step(self)


SFTTrainer.train_iteration = interrupted_on_rank_1
sys.exit(main(sys.argv[1:]))
