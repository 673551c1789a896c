"""The README's main job: train SAC with the latent-space policy and report its evaluation return.

Run ``python -m sb3_lsp.demo --help`` for the options.
"""

import argparse
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy

import sb3_lsp  # noqa: F401  (registers the "LSPPolicy" alias)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1", help="Gymnasium environment id")
    parser.add_argument("--steps", type=int, default=15_000, help="environment steps to train for")
    # RL Zoo's Pendulum-v1 setting; everything else is SB3's SAC default
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--output", type=Path, default=Path("runs/demo"), help="folder for the model and logs")
    args = parser.parse_args(argv)

    args.output.mkdir(parents=True, exist_ok=True)
    model = SAC(
        "LSPPolicy",
        args.env,
        learning_rate=args.learning_rate,
        seed=args.seed,
        tensorboard_log=str(args.output / "tensorboard"),
        verbose=0,
    )
    model.learn(total_timesteps=args.steps, progress_bar=True)
    model_path = args.output / f"sac_lsp_{args.env}.zip"
    model.save(model_path)

    eval_env = gym.make(args.env)
    eval_env.reset(seed=args.seed + 10_000)
    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    print(f"Saved {model_path}")
    print(
        f"SAC + LSPPolicy on {args.env} after {args.steps} steps: deterministic evaluation return "
        f"{mean_return:.1f} +/- {std_return:.1f} over {args.eval_episodes} episodes"
    )


if __name__ == "__main__":
    main()
