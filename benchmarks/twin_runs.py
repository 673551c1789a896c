"""
How soon two SAC runs of one function part when only their floating-point rounding differs, and so
how far a seed's final return says anything about the policy class that ran it.

    python -m benchmarks.twin_runs --env HalfCheetah-v5 --out benchmarks/results/twin_runs

Two pairs, each training on one replay buffer (filled by ``--buffer-steps`` random actions), with the same torch
and numpy seeds before every block of updates:

- "MlpPolicy vs Gaussian layer": SB3's ``MlpPolicy`` against ``LSPPolicy`` with the Gaussian layer
  alone (``n_coupling_layers=0``) and SB3's ``squash_epsilon``, given MlpPolicy's weights: the same
  function computed by other code;
- "MlpPolicy vs MlpPolicy + 1e-7": MlpPolicy against a copy of itself with one actor weight moved
  by 1e-7.

Writes ``twin_runs.csv`` (pair, updates, the largest |difference| of any actor and of any critic
weight, and both entropy coefficients) and prints each row.
"""

import argparse
import copy
import csv
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3 import SAC

import sb3_lsp


def gaussian_layer_twin(model: SAC) -> SAC:
    """
    ``LSPPolicy`` with the Gaussian layer alone and SB3's epsilon, holding ``model``'s (SAC or TQC
    with SB3's ``MlpPolicy``) actor and critic weights: at every observation the same distribution.
    """
    twin = type(model)(
        "LSPPolicy",
        model.env,
        learning_starts=model.learning_starts,
        seed=model.seed,
        policy_kwargs=dict(n_coupling_layers=0, squash_epsilon=sb3_lsp.SB3_SQUASH_EPSILON),
    )
    with th.no_grad():
        for weights, sb3_weights in zip(actor_tensors(twin), actor_tensors(model), strict=True):
            weights.copy_(sb3_weights)
    twin.critic.load_state_dict(model.critic.state_dict())
    twin.critic_target.load_state_dict(model.critic_target.state_dict())
    return twin


def perturbed_twin(model: SAC, by: float = 1e-7) -> SAC:
    """A copy of ``model`` (SAC or TQC, ``MlpPolicy``) with its first actor mean weight moved by ``by``."""
    twin = type(model)("MlpPolicy", model.env, learning_starts=model.learning_starts, seed=model.seed)
    twin.policy.load_state_dict(model.policy.state_dict())
    with th.no_grad():
        twin.actor.mu.weight[0, 0] += by
    return twin


def on_the_same_buffer(model: SAC, twin: SAC) -> None:
    """Give ``twin`` ``model``'s replay buffer and progress, so their next updates see the same batches."""
    twin.learn(0)  # sets up SB3's logger and training state without a step
    twin.replay_buffer = copy.deepcopy(model.replay_buffer)
    twin.num_timesteps, twin._current_progress_remaining = model.num_timesteps, model._current_progress_remaining


def actor_tensors(model: SAC) -> list[th.Tensor]:
    """
    The actor's weights in the Gaussian layer's layout, for either actor: the two hidden layers
    (SB3's ``latent_pi``, the flow's embedding: Linear, ReLU, Linear, ReLU), then the ``[mu, log_std]``
    rows and biases (SB3's two heads stacked, the flow's context projection). SB3's are copies, the
    flow's the parameters themselves.
    """
    actor = model.actor
    if hasattr(actor, "latent_pi"):
        hidden = [actor.latent_pi[0], actor.latent_pi[2]]
        head = [th.cat([actor.mu.weight, actor.log_std.weight]), th.cat([actor.mu.bias, actor.log_std.bias])]
    else:
        hidden = [actor.embedding[0], actor.embedding[2]]
        head = [actor.flow.context_projection.weight, actor.flow.context_projection.bias]
    return [tensor for layer in hidden for tensor in (layer.weight, layer.bias)] + head


def actor_weights(model: SAC) -> th.Tensor:
    """:func:`actor_tensors` flattened into one vector, comparable across the two actors."""
    return th.cat([tensor.flatten() for tensor in actor_tensors(model)])


def largest_difference(first: th.nn.Module, second: th.nn.Module) -> float:
    """The largest |difference| between the weights of two modules of one class."""
    return max((a - b).abs().max().item() for a, b in zip(first.parameters(), second.parameters(), strict=True))


def train_in_step(model: SAC, twin: SAC, seed: int, updates: int) -> None:
    for trained in (model, twin):
        th.manual_seed(seed)
        np.random.seed(seed)  # SB3's replay buffer samples with numpy's global generator
        trained.train(gradient_steps=updates, batch_size=trained.batch_size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--buffer-steps", type=int, default=2000, help="random-action steps that fill the buffer")
    parser.add_argument(
        "--blocks", type=int, nargs="+", default=[1, 99, 100, 200, 400, 800], help="updates between two comparisons"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/twin_runs"))
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for pair, make_twin in (
        ("MlpPolicy vs Gaussian layer", gaussian_layer_twin),
        ("MlpPolicy vs MlpPolicy + 1e-7", perturbed_twin),
    ):
        model = SAC("MlpPolicy", args.env, learning_starts=args.buffer_steps, seed=args.seed)
        twin = make_twin(model)
        model.learn(args.buffer_steps)  # random actions only (learning_starts): fills the buffer
        on_the_same_buffer(model, twin)
        done = 0
        for block, updates in enumerate(args.blocks):
            train_in_step(model, twin, args.seed + block, updates)
            done += updates
            row = {
                "pair": pair,
                "updates": done,
                "actor_max_abs_diff": (actor_weights(model) - actor_weights(twin)).abs().max().item(),
                "critic_max_abs_diff": largest_difference(model.critic, twin.critic),
                "ent_coef": model.log_ent_coef.exp().item(),
                "twin_ent_coef": twin.log_ent_coef.exp().item(),
            }
            print(
                ", ".join(
                    f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}" for key, value in row.items()
                ),
                flush=True,
            )
            rows.append(row)
    with open(args.out / "twin_runs.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out / 'twin_runs.csv'}")


if __name__ == "__main__":
    main()
