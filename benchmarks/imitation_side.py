"""The `imitation` half of ``benchmarks/imitation_vs_prefrl.py``: HumanCompatibleAI imitation's
``PreferenceComparisons`` on a MuJoCo env, from synthetic preferences on the true return, with SB3 PPO
at prefrl's MuJoCo preset. Runs in imitation's own venv (gymnasium 0.29, SB3 2.2: see
``benchmarks/imitation-requirements.txt``), never imports prefrl, and writes one JSON object to
``--result``: true returns (mean of the last 20 training episodes, 10-episode deterministic
evaluation), env steps actually simulated, seconds.

    /path/to/imitation-venv/bin/python benchmarks/imitation_side.py --env-id Hopper-v4 --seed 1 \
        --total-timesteps 147456 --num-labels 700 --fragment-length 188 --result out.json

Hopper-v4 with ``terminate_when_unhealthy=False, ctrl_cost_weight=0`` is the same task as prefrl's
Hopper-v5 with ``--no-early-termination --no-control-cost``: same 11-d observation, same dynamics, and
the healthy reward paid only while healthy in both (checked: the same seed and actions give the same
positions and the same return in both versions).

The recipe is imitation's own (its preference-comparisons tutorial and
``imitation/scripts/train_preference_comparisons.py`` with the ``reward_ensemble`` reward config and
``active_selection``), set where it has the knob to what prefrl does, so that the two loops differ in
their implementation rather than in their choices:

- rounds: ``num_iterations`` 5 and ``initial_epoch_multiplier`` 4, as in imitation's tutorial (the class
  default of 200 epochs on the first round is hours on this CPU). ``PreferenceComparisons.train(T)``
  trains the agent T // K steps in each of its K + 1 rounds (the first included), so T is chosen for
  the agent to take exactly ``--total-timesteps`` steps;
- reward model: ``RewardEnsemble`` of 3 ``BasicRewardNet`` (obs + action, 2 x 64 hidden, running input
  norm), each behind a running output norm, the agent paid their mean (``AddSTDRewardWrapper``, alpha 0);
  fitted by ``EnsembleTrainer`` (bagging; 3 epochs over every comparison each round, as the tutorial);
- queries: ``ActiveSelectionFragmenter`` (ensemble disagreement on the logit) over 10x as many pairs
  from a ``RandomFragmenter`` (prefrl: 10 candidate pairs per asked one); ``initial_comparison_frac``
  0.25 and the ``hyperbolic`` schedule (prefrl: 25% first, then a rate c / (T + c));
- labeller: ``SyntheticGatherer(temperature=0)``, a deterministic teacher on the true return (prefrl's
  default); preference model with ``noise_prob`` 0.1 (prefrl's 10% random-answer noise model);
- agent: SB3 PPO at prefrl's Hopper preset (CleanRL / PPO paper: 2048-step rollouts, minibatch 64,
  10 epochs, lr 3e-4 annealed linearly to 0 over the run, gamma 0.99, GAE 0.95, clip 0.2 also on the
  value, entropy 0, tanh 64 x 64) on ``VecNormalize`` (observations and rewards, as prefrl normalises
  both; outside imitation's reward wrapper, so fragments keep raw observations and true rewards),
  trained through imitation's ``AgentTrainer`` (the learned reward via ``RewardVecEnvWrapper``).

Fragments come from the agent's last round of training plus, when that is too few (the first round:
the untrained policy), extra steps sampled by imitation; ``env_steps_simulated`` counts them all.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from imitation.algorithms import preference_comparisons as pc
from imitation.data.wrappers import RolloutInfoWrapper
from imitation.rewards import reward_nets
from imitation.util import logger as imit_logger
from imitation.util import networks, util
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize


class StepCounter(gym.Wrapper):
    """Counts every env step simulated, whoever takes it (PPO's rollouts or imitation's extra samples)."""

    steps = 0

    def step(self, action):
        StepCounter.steps += 1
        return self.env.step(action)


def variant_kwargs(env_id: str, paper_variant: bool) -> dict:
    """The 2017 paper's variant where the env has the options: no early termination, no control cost."""
    if not paper_variant:
        return {}
    params = inspect.signature(
        gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
    ).parameters
    kwargs: dict = {}
    if "terminate_when_unhealthy" in params:
        kwargs["terminate_when_unhealthy"] = False
    if "ctrl_cost_weight" in params:
        kwargs["ctrl_cost_weight"] = 0.0
    return kwargs


def evaluate(model: PPO, vecnorm: VecNormalize, env_id: str, env_kwargs: dict, seed: int, episodes: int):
    """True returns of ``episodes`` deterministic episodes on a fresh env seeded ``seed + i``, the
    policy seeing observations normalised with the training statistics (frozen)."""
    env = gym.make(env_id, **env_kwargs)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(vecnorm.normalize_obs(obs[None]), deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-id", default="Hopper-v4")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--total-timesteps", type=int, default=151_552)
    parser.add_argument("--num-labels", type=int, default=700)
    parser.add_argument("--fragment-length", type=int, default=188)
    parser.add_argument(
        "--no-paper-variant", action="store_true", help="keep early termination and control cost"
    )
    parser.add_argument(
        "--num-iterations", type=int, default=5, help="PreferenceComparisons rounds (imitation's tutorial: 5)"
    )
    parser.add_argument("--initial-epoch-multiplier", type=float, default=4.0, help="imitation's tutorial: 4")
    parser.add_argument("--ensemble-size", type=int, default=3)
    parser.add_argument("--oversample", type=int, default=10, help="candidate pairs per asked pair")
    parser.add_argument("--num-eval-episodes", type=int, default=10)
    parser.add_argument("--log-dir", type=Path, default=None, help="imitation's CSV logs (none if unset)")
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON result")
    args = parser.parse_args()

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    env_kwargs = variant_kwargs(args.env_id, not args.no_paper_variant)
    venv = util.make_vec_env(
        args.env_id,
        rng=rng,
        n_envs=1,
        env_make_kwargs=env_kwargs,
        post_wrappers=[lambda env, _: StepCounter(RolloutInfoWrapper(env))],
    )
    custom_logger = imit_logger.configure(
        str(args.log_dir) if args.log_dir else None, ["csv"] if args.log_dir else []
    )

    members = [
        reward_nets.NormalizedRewardNet(
            reward_nets.BasicRewardNet(
                venv.observation_space,
                venv.action_space,
                hid_sizes=(64, 64),
                normalize_input_layer=networks.RunningNorm,
            ),
            networks.RunningNorm,
        )
        for _ in range(args.ensemble_size)
    ]
    reward_net = reward_nets.AddSTDRewardWrapper(
        reward_nets.RewardEnsemble(venv.observation_space, venv.action_space, members), default_alpha=0.0
    )
    preference_model = pc.PreferenceModel(reward_net, noise_prob=0.1)
    fragmenter = pc.ActiveSelectionFragmenter(
        preference_model=preference_model,
        base_fragmenter=pc.RandomFragmenter(warning_threshold=0, rng=rng, custom_logger=custom_logger),
        fragment_sample_factor=args.oversample,
        uncertainty_on="logit",
        custom_logger=custom_logger,
    )
    gatherer = pc.SyntheticGatherer(temperature=0, rng=rng, custom_logger=custom_logger)
    reward_trainer = pc.EnsembleTrainer(
        preference_model, pc.CrossEntropyRewardLoss(), rng=rng, epochs=3, custom_logger=custom_logger
    )

    n_steps, lr = 2048, 3e-4
    # PreferenceComparisons.train(T) trains the agent T // K steps in each of its K + 1 rounds (the
    # initial one included), and each SB3 learn() call runs whole 2048-step rollouts: ask for what
    # makes the agent's steps exactly --total-timesteps (when it is a multiple of (K + 1) * 2048).
    rounds = args.num_iterations + 1
    rollouts_per_round = max(1, args.total_timesteps // (rounds * n_steps))
    train_timesteps = args.num_iterations * rollouts_per_round * n_steps
    num_updates = rounds * rollouts_per_round
    holder: dict[str, PPO] = {}

    def annealed_lr(_progress_remaining: float) -> float:
        # SB3's own progress is per learn() call, and imitation calls learn() once per iteration:
        # anneal over the whole run instead, as prefrl does (lr at update i = lr * (1 - i / N)).
        model = holder.get("model")
        done = 0 if model is None else max(0, model.num_timesteps - n_steps) // n_steps
        return lr * max(0.0, 1.0 - done / num_updates)

    agent = PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=64,
        n_epochs=10,
        learning_rate=annealed_lr,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        clip_range_vf=0.2,
        ent_coef=0.0,
        vf_coef=0.5,
        max_grad_norm=0.5,
        seed=args.seed,
        device="cpu",
    )
    holder["model"] = agent
    agent_trainer = pc.AgentTrainer(
        algorithm=agent,
        reward_fn=reward_net,
        venv=venv,
        rng=rng,
        exploration_frac=0.0,
        custom_logger=custom_logger,
    )
    # Normalise observations and the learned reward as prefrl does: outside imitation's reward wrapper,
    # so the buffered trajectories keep raw observations and true rewards for the labeller.
    vecnorm = VecNormalize(agent_trainer.venv, norm_obs=True, norm_reward=True, gamma=0.99)
    agent.set_env(vecnorm)

    main_trainer = pc.PreferenceComparisons(
        agent_trainer,
        reward_net,
        num_iterations=args.num_iterations,
        fragmenter=fragmenter,
        preference_gatherer=gatherer,
        reward_trainer=reward_trainer,
        fragment_length=args.fragment_length,
        transition_oversampling=1,
        initial_comparison_frac=0.25,
        custom_logger=custom_logger,
        allow_variable_horizon=False,
        query_schedule="hyperbolic",
        initial_epoch_multiplier=args.initial_epoch_multiplier,
    )
    setup_s = time.perf_counter() - start
    results = main_trainer.train(train_timesteps, args.num_labels)
    train_s = time.perf_counter() - start - setup_s

    window = [float(info["r"]) for info in list(agent.ep_info_buffer)[-20:]]
    vecnorm.training = False
    eval_returns = evaluate(agent, vecnorm, args.env_id, env_kwargs, args.seed, args.num_eval_episodes)
    row = {
        "env_id": args.env_id,
        "env_kwargs": env_kwargs,
        "seed": args.seed,
        "steps": int(agent.num_timesteps),
        "env_steps_simulated": StepCounter.steps,
        "labels": len(main_trainer.dataset),
        "final": float(np.mean(window)) if window else None,
        "eval": float(np.mean(eval_returns)),
        "eval_std": float(np.std(eval_returns)),
        "reward_accuracy": float(results["reward_accuracy"]),
        "setup_s": round(setup_s, 1),
        "train_s": round(train_s, 1),
        "num_iterations": args.num_iterations,
        "initial_epoch_multiplier": args.initial_epoch_multiplier,
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
