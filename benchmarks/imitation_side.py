"""The `imitation` half of ``benchmarks/imitation_vs_prefrl.py``: HumanCompatibleAI imitation's
``PreferenceComparisons`` from synthetic preferences on the true return. Runs in imitation's own venv
(gymnasium 0.29, SB3 2.2: see ``benchmarks/imitation-requirements.txt``), never imports prefrl, and
writes one JSON object to ``--result``: true returns (mean of the last 20 training episodes, a
deterministic evaluation), agent steps taken, env steps actually simulated, seconds. Two protocols:

- ``--protocol hopper`` (the default): a MuJoCo env with SB3 PPO at prefrl's MuJoCo preset and every
  knob imitation has set to what prefrl does (below);
- ``--protocol pendulum-tutorial``: imitation's own recipe for Pendulum-v1, unchanged (below).

    /path/to/imitation-venv/bin/python benchmarks/imitation_side.py --env-id Hopper-v4 --seed 1 \
        --total-timesteps 147456 --num-labels 700 --fragment-length 188 --result out.json
    /path/to/imitation-venv/bin/python benchmarks/imitation_side.py --protocol pendulum-tutorial \
        --env-id Pendulum-v1 --seed 1 --total-timesteps 102400 --num-labels 200 \
        --fragment-length 100 --num-eval-episodes 50 --result out.json

Protocol ``hopper``
-------------------
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

The reported returns are that agent's.

Protocol ``pendulum-tutorial``
------------------------------
imitation 1.0.1's tutorial "Learning a Reward Function using Preference Comparisons"
(``docs/tutorials/5_train_preference_comparisons.ipynb``) as it stands, seeded with ``--seed``
instead of 0: ``make_vec_env("Pendulum-v1")`` (8 envs); ``BasicRewardNet`` (obs + action, 2 x 32
hidden, running input norm); ``RandomFragmenter``; ``SyntheticGatherer`` at its defaults (a
Boltzmann teacher, temperature 1, on the undiscounted true return of each fragment);
``PreferenceModel`` (no noise); ``BasicRewardTrainer`` (3 epochs, cross-entropy); SB3 PPO with
``FeedForward32Policy`` behind a ``RunningNorm`` features extractor, 2048 steps per rollout (256 x 8
envs), minibatch 64, 10 epochs, lr 2e-3 (constant), gamma 0.97, GAE 0.95, clip 0.1, entropy 0.01;
``AgentTrainer(exploration_frac=0.05)``; ``PreferenceComparisons(num_iterations=5,
fragment_length=100, transition_oversampling=1, initial_comparison_frac=0.1,
initial_epoch_multiplier=4, query_schedule="hyperbolic")`` trained with 200 comparisons; then, as
the tutorial's second half, a fresh PPO learner (same settings) on ``RewardVecEnvWrapper(venv,
reward_net.predict_processed)``, the learned reward alone.

The step budget split: the tutorial calls ``train(total_timesteps=5_000)`` for the preference loop
(kept: ``--pc-timesteps``); SB3 runs whole 2048-step rollouts and imitation trains the agent in each
of its 6 rounds, so the loop's agent actually takes 6 x 2048 = 12,288 steps. The learner then gets
what is left of ``--total-timesteps`` (102,400 - 12,288 = 90,112 by default, 44 rollouts; the
tutorial says "set to 100_000 to train a proficient expert"), so that the agent steps of the whole
protocol equal prefrl's ``--total-timesteps``: prefrl's single agent learns the reward's data and the
policy within those same 102,400 steps, and what is compared is returns for the same labels and the
same agent env steps. ``--learner-timesteps 102400`` gives the learner the full budget instead (the
other reading of the tutorial, then ``steps`` reports 114,688). Both agents train on the same
``venv``, as in the tutorial. Reported ``final`` and ``eval`` are the learner's (the policy the
tutorial evaluates): the mean true return of its last 20 training episodes (the ``Monitor`` that
``make_vec_env`` puts below the reward wrapper records the env's reward), and ``--num-eval-episodes``
deterministic episodes on a fresh env (the policy's ``RunningNorm`` frozen: SB3's ``predict`` runs the
policy in eval mode); ``pc_agent_final`` is the preference loop's own agent's last 20 episodes.

Both protocols: torch runs on ``--torch-threads`` CPU threads, 1 by default as prefrl's (small MLPs
on a 2-core machine shared with other work; more threads spend CPU on spinning, not on the run).
Fragments come from the agent's last round of training plus, when that is too few,
extra steps sampled by imitation (and its exploration steps); ``env_steps_simulated`` counts them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from imitation.algorithms import preference_comparisons as pc
from imitation.data.wrappers import RolloutInfoWrapper
from imitation.policies.base import FeedForward32Policy, NormalizeFeaturesExtractor
from imitation.rewards import reward_nets
from imitation.rewards.reward_wrapper import RewardVecEnvWrapper
from imitation.util import logger as imit_logger
from imitation.util import networks, util
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

PROTOCOLS = ("hopper", "pendulum-tutorial")


class StepCounter(gym.Wrapper):
    """Counts every env step simulated, whoever takes it (PPO's rollouts or imitation's extra samples)."""

    steps = 0

    def step(self, action):
        StepCounter.steps += 1
        return self.env.step(action)


@dataclasses.dataclass
class Setup:
    """What a protocol builds: the preference loop, its agent, and how the reported policy sees
    observations at evaluation (the training normalisation, frozen)."""

    venv: VecEnv
    env_kwargs: dict
    reward_net: reward_nets.RewardNet
    agent: PPO
    trainer: pc.PreferenceComparisons
    train_timesteps: int
    normalize_obs: Callable[[np.ndarray], np.ndarray]


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


def evaluate(
    model: PPO,
    normalize_obs: Callable[[np.ndarray], np.ndarray],
    env_id: str,
    env_kwargs: dict,
    seed: int,
    episodes: int,
) -> list[float]:
    """True returns of ``episodes`` deterministic episodes on a fresh env seeded ``seed + i``, the
    policy seeing observations through ``normalize_obs`` (the training statistics, frozen)."""
    env = gym.make(env_id, **env_kwargs)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(normalize_obs(obs[None]), deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def last_returns(model: PPO, episodes: int = 20) -> float | None:
    """Mean true return of the model's last ``episodes`` training episodes (SB3's buffer of the
    ``Monitor`` infos, which sits below imitation's reward wrapper)."""
    window = [float(info["r"]) for info in list(model.ep_info_buffer)[-episodes:]]
    return float(np.mean(window)) if window else None


def build_hopper(args: argparse.Namespace, rng: np.random.Generator, logger) -> Setup:
    """imitation's loop with prefrl's choices where imitation has the knob (module docstring)."""
    env_kwargs = variant_kwargs(args.env_id, not args.no_paper_variant)
    venv = util.make_vec_env(
        args.env_id,
        rng=rng,
        n_envs=1,
        env_make_kwargs=env_kwargs,
        post_wrappers=[lambda env, _: StepCounter(RolloutInfoWrapper(env))],
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
        base_fragmenter=pc.RandomFragmenter(warning_threshold=0, rng=rng, custom_logger=logger),
        fragment_sample_factor=args.oversample,
        uncertainty_on="logit",
        custom_logger=logger,
    )
    gatherer = pc.SyntheticGatherer(temperature=0, rng=rng, custom_logger=logger)
    reward_trainer = pc.EnsembleTrainer(
        preference_model, pc.CrossEntropyRewardLoss(), rng=rng, epochs=3, custom_logger=logger
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
        custom_logger=logger,
    )
    # Normalise observations and the learned reward as prefrl does: outside imitation's reward wrapper,
    # so the buffered trajectories keep raw observations and true rewards for the labeller.
    vecnorm = VecNormalize(agent_trainer.venv, norm_obs=True, norm_reward=True, gamma=0.99)
    agent.set_env(vecnorm)

    trainer = pc.PreferenceComparisons(
        agent_trainer,
        reward_net,
        num_iterations=args.num_iterations,
        fragmenter=fragmenter,
        preference_gatherer=gatherer,
        reward_trainer=reward_trainer,
        fragment_length=args.fragment_length,
        transition_oversampling=1,
        initial_comparison_frac=0.25,
        custom_logger=logger,
        allow_variable_horizon=False,
        query_schedule="hyperbolic",
        initial_epoch_multiplier=args.initial_epoch_multiplier,
    )

    def normalize_obs(obs: np.ndarray) -> np.ndarray:
        vecnorm.training = False
        return vecnorm.normalize_obs(obs)

    return Setup(venv, env_kwargs, reward_net, agent, trainer, train_timesteps, normalize_obs)


def tutorial_ppo(env: VecEnv, seed: int) -> PPO:
    """The tutorial's PPO, for the preference loop's agent and for the learner alike."""
    return PPO(
        policy=FeedForward32Policy,
        policy_kwargs=dict(
            features_extractor_class=NormalizeFeaturesExtractor,
            features_extractor_kwargs=dict(normalize_class=networks.RunningNorm),
        ),
        env=env,
        seed=seed,
        n_steps=2048 // env.num_envs,
        batch_size=64,
        ent_coef=0.01,
        learning_rate=2e-3,
        clip_range=0.1,
        gae_lambda=0.95,
        gamma=0.97,
        n_epochs=10,
        device="cpu",
    )


def build_pendulum_tutorial(args: argparse.Namespace, rng: np.random.Generator, logger) -> Setup:
    """imitation's preference-comparisons tutorial, its settings unchanged (module docstring)."""
    venv = util.make_vec_env(args.env_id, rng=rng, post_wrappers=[lambda env, _: StepCounter(env)])
    reward_net = reward_nets.BasicRewardNet(
        venv.observation_space, venv.action_space, normalize_input_layer=networks.RunningNorm
    )
    fragmenter = pc.RandomFragmenter(warning_threshold=0, rng=rng, custom_logger=logger)
    gatherer = pc.SyntheticGatherer(rng=rng, custom_logger=logger)
    preference_model = pc.PreferenceModel(reward_net)
    reward_trainer = pc.BasicRewardTrainer(
        preference_model=preference_model,
        loss=pc.CrossEntropyRewardLoss(),
        epochs=3,
        rng=rng,
        custom_logger=logger,
    )
    agent = tutorial_ppo(venv, args.seed)
    agent_trainer = pc.AgentTrainer(
        algorithm=agent,
        reward_fn=reward_net,
        venv=venv,
        exploration_frac=0.05,
        rng=rng,
        custom_logger=logger,
    )
    trainer = pc.PreferenceComparisons(
        agent_trainer,
        reward_net,
        num_iterations=args.num_iterations,
        fragmenter=fragmenter,
        preference_gatherer=gatherer,
        reward_trainer=reward_trainer,
        fragment_length=args.fragment_length,
        transition_oversampling=1,
        initial_comparison_frac=0.1,
        custom_logger=logger,
        allow_variable_horizon=False,
        initial_epoch_multiplier=args.initial_epoch_multiplier,
        query_schedule="hyperbolic",
    )
    return Setup(venv, {}, reward_net, agent, trainer, args.pc_timesteps, lambda obs: obs)


BUILDERS = {"hopper": build_hopper, "pendulum-tutorial": build_pendulum_tutorial}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="hopper")
    parser.add_argument("--env-id", default="Hopper-v4")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--total-timesteps",
        type=int,
        default=151_552,
        help="agent env steps (pendulum-tutorial: the preference loop's agent plus the learner)",
    )
    parser.add_argument("--num-labels", type=int, default=700)
    parser.add_argument("--fragment-length", type=int, default=188)
    parser.add_argument(
        "--no-paper-variant", action="store_true", help="hopper: keep early termination and control cost"
    )
    parser.add_argument(
        "--num-iterations", type=int, default=5, help="PreferenceComparisons rounds (imitation's tutorial: 5)"
    )
    parser.add_argument("--initial-epoch-multiplier", type=float, default=4.0, help="imitation's tutorial: 4")
    parser.add_argument("--ensemble-size", type=int, default=3, help="hopper only")
    parser.add_argument("--oversample", type=int, default=10, help="hopper: candidate pairs per asked pair")
    parser.add_argument(
        "--pc-timesteps",
        type=int,
        default=5_000,
        help="pendulum-tutorial: PreferenceComparisons.train(total_timesteps) (the tutorial's 5,000)",
    )
    parser.add_argument(
        "--learner-timesteps",
        type=int,
        default=None,
        help="pendulum-tutorial: the learner's steps (default: --total-timesteps less the loop's agent's)",
    )
    parser.add_argument("--num-eval-episodes", type=int, default=10)
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="torch CPU threads (prefrl's default: 1)"
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="imitation's CSV logs (none if unset)")
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON result")
    args = parser.parse_args()

    start = time.perf_counter()
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    logger = imit_logger.configure(
        str(args.log_dir) if args.log_dir else None, ["csv"] if args.log_dir else []
    )
    setup = BUILDERS[args.protocol](args, rng, logger)
    setup_s = time.perf_counter() - start
    results = setup.trainer.train(setup.train_timesteps, args.num_labels)
    train_s = time.perf_counter() - start - setup_s

    row: dict = {"protocol": args.protocol}
    policy, normalize_obs = setup.agent, setup.normalize_obs
    steps = int(setup.agent.num_timesteps)
    if args.protocol == "pendulum-tutorial":
        learner_steps = args.learner_timesteps
        if learner_steps is None:
            learner_steps = args.total_timesteps - steps
        if learner_steps <= 0:
            raise SystemExit(f"the preference loop's agent took {steps} steps: none left for the learner")
        learner = tutorial_ppo(RewardVecEnvWrapper(setup.venv, setup.reward_net.predict_processed), args.seed)
        learner.learn(learner_steps)
        row.update(
            {
                "pc_timesteps": args.pc_timesteps,
                "pc_agent_steps": steps,
                "pc_agent_final": last_returns(setup.agent),
                "learner_steps": int(learner.num_timesteps),
                "learner_s": round(time.perf_counter() - start - setup_s - train_s, 1),
            }
        )
        policy, steps = learner, steps + int(learner.num_timesteps)

    eval_returns = evaluate(
        policy, normalize_obs, args.env_id, setup.env_kwargs, args.seed, args.num_eval_episodes
    )
    row = {
        "env_id": args.env_id,
        "env_kwargs": setup.env_kwargs,
        "seed": args.seed,
        "steps": steps,
        "env_steps_simulated": StepCounter.steps,
        "labels": len(setup.trainer.dataset),
        "final": last_returns(policy),
        "eval": float(np.mean(eval_returns)),
        "eval_std": float(np.std(eval_returns)),
        "num_eval_episodes": args.num_eval_episodes,
        "reward_accuracy": float(results["reward_accuracy"]),
        "setup_s": round(setup_s, 1),
        "train_s": round(train_s, 1),
        "num_iterations": args.num_iterations,
        "initial_epoch_multiplier": args.initial_epoch_multiplier,
        **row,
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
