"""Deep RL from human preferences (Christiano et al. 2017): the loop's settings (``config``) and the
loop itself as the paper's named steps (``trainer``)."""

from prefrl.rlhp.config import RLHPConfig
from prefrl.rlhp.trainer import TRAINING_STATUS_KEY, RLHPTrainer

__all__ = ["TRAINING_STATUS_KEY", "RLHPConfig", "RLHPTrainer"]
