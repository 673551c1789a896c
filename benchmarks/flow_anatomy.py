"""
What a trained Gaussian-start flow does beyond its Gaussian first layer, on the states its own
deterministic policy visits: the Gaussian layer's sigma, the coupling layers' log-determinant and how
far they move the action.

    python -m benchmarks.flow_anatomy RUN_FOLDER_OR_ZIP [...] [--env HalfCheetah-v5] [--steps 1000]

Per model, one line: the Gaussian layer's mean sigma; the couplings' log|det| (summed over action
dimensions; 0 when they add nothing); the mean |tanh(f(h)) - tanh(mu + sigma h)| of sampled latents
and |tanh(f(0)) - tanh(mu)| (how far the couplings move sampled and deterministic actions, in the
squashed units); the largest |correlation| between two action dimensions at one state (512 samples).
"""

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC

import sb3_lsp  # noqa: F401  (registers LSPPolicy)
from benchmarks.grid import run_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="benchmark run folders or model .zip files")
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=1000, help="states visited by the deterministic policy")
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    env = gym.make(args.env)
    for path in args.models:
        model = SAC.load(run_model(path) if path.is_dir() else path, device="cpu")
        obs, _ = env.reset(seed=args.seed)
        states = []
        for _ in range(args.steps):
            states.append(obs)
            obs, *_ = env.step(model.predict(obs, deterministic=True)[0])
        with th.no_grad():
            context = model.actor.embed(th.as_tensor(np.array(states), dtype=th.float32))
            flow = model.actor.flow
            mu, log_sigma = flow.base_mean_and_log_std(context)
            h = th.randn_like(mu, generator=th.Generator().manual_seed(args.seed))
            u, log_det = flow(h, context)
            sampled_shift = (u.tanh() - (mu + log_sigma.exp() * h).tanh()).abs().mean()
            mode_shift = (flow.mode(context).tanh() - mu.tanh()).abs().mean()
            one_state = context[len(states) // 2 :][:1].expand(512, -1)
            actions = flow(th.randn(512, mu.shape[1], generator=th.Generator().manual_seed(args.seed)), one_state)[0].tanh()
            correlation = (th.corrcoef(actions.T) - th.eye(mu.shape[1])).abs().max()
        coupling_log_det = (log_det - log_sigma.sum(-1)).mean()
        print(
            f"{path}: Gaussian sigma {log_sigma.exp().mean():.2f}, coupling log|det| {coupling_log_det:.2f}, "
            f"sampled shift {sampled_shift:.3f}, deterministic shift {mode_shift:.3f}, max |corr| {correlation:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
