"""Speed: SB3's MlpPolicy against LSPPolicy, side by side, identical critics, batch size and seed.

Reads top to bottom. For each repetition (policies alternate, so drift on the machine hits both):
  1. training throughput: SAC on HalfCheetah-v5, replay buffer pre-filled with `--learning-starts`
     random steps (not timed), then `--updates` env steps with one gradient step each (timed); then
     one gradient step alone, timed without the env steps that both policies pay alike;
  2. actor micro-benchmarks: `action_log_prob` at `--batch-size` (forward, and forward + backward),
     deterministic `predict` at batch 1;
  3. the aten ops each of those calls dispatches (torch.profiler, once per policy): where time at
     small batches goes, and a count that, unlike a time, no other job on the machine can disturb.
Prints a markdown table of medians and LSPPolicy's speed relative to MlpPolicy's (> 1: faster): the
median over repetitions of each repetition's ratio, since the two policies of one repetition run
back to back and so share the machine's state more than medians taken separately do.

    python -m benchmarks.speed --repetitions 3 --updates 2000
    python -m benchmarks.speed --lsp-kwargs '{"gaussian_base": true, "fused_coupling": true}'   (other flow settings)
    python -m benchmarks.speed --optimizer-kwargs '{"fused": true}'   (the same fused Adam step in both)
"""

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import date

import numpy as np
import torch as th
from stable_baselines3 import SAC

import sb3_lsp  # noqa: F401  (registers "LSPPolicy")
from benchmarks.run import cpu_model

# Both with SB3's critic; MlpPolicy's actor is SB3's default, LSPPolicy's its defaults or --lsp-kwargs.
POLICIES = ("MlpPolicy", "LSPPolicy")
# Names of the measures taken at `--batch-size`, in the table and for scripts that read it.
GRADIENT_STEP = "SAC gradient step, batch {batch_size}"
LOG_PROB_FORWARD = "action_log_prob, batch {batch_size}, forward"
LOG_PROB_FORWARD_BACKWARD = "action_log_prob, batch {batch_size}, forward+backward"


def make_model(policy: str, args: argparse.Namespace) -> SAC:
    return SAC(
        policy,
        args.env,
        batch_size=args.batch_size,
        learning_starts=args.learning_starts,
        policy_kwargs={
            "net_arch": list(args.critic_net_arch),
            **({"optimizer_kwargs": args.optimizer_kwargs} if args.optimizer_kwargs is not None else {}),
            **(args.lsp_kwargs if policy == "LSPPolicy" else {}),
        },
        seed=args.seed,
        device="cpu",
    )


def time_per_call_us(fn: Callable[[], object], iterations: int) -> float:
    for _ in range(20):  # warm-up
        fn()
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations * 1e6


def aten_ops_per_call(fn: Callable[[], object]) -> int:
    """Every aten op one call of ``fn`` dispatches, nested ones and those of the backward pass included."""
    fn()  # warm-up: first calls allocate
    with th.profiler.profile(activities=[th.profiler.ProfilerActivity.CPU]) as profile:
        fn()
    return sum(1 for event in profile.events() if event.name.startswith("aten::"))


def training_benchmarks(policy: str, args: argparse.Namespace) -> tuple[dict[str, float], dict[str, int]]:
    """
    Env steps per second of SAC training, then the time and the aten ops of one gradient step alone
    (replay sampling, critic, actor and temperature updates), without the env steps, which both
    policies pay alike.
    """
    model = make_model(policy, args)
    model.learn(args.learning_starts)  # random actions into the replay buffer, no update yet
    start = time.perf_counter()
    model.learn(args.updates, reset_num_timesteps=False)
    steps_per_second = args.updates / (time.perf_counter() - start)

    def gradient_step() -> None:
        model.train(gradient_steps=1, batch_size=args.batch_size)

    name = GRADIENT_STEP.format(batch_size=args.batch_size)
    step_time = time_per_call_us(gradient_step, args.micro_iterations)
    times = {"SAC training, env steps/s": steps_per_second, f"{name} (us)": step_time}
    return times, {f"{name} (aten ops)": aten_ops_per_call(gradient_step)}


def actor_micro_benchmarks(policy: str, args: argparse.Namespace) -> tuple[dict[str, float], dict[str, int]]:
    """Time per call of each actor micro-benchmark, and the aten ops each dispatches."""
    model = make_model(policy, args)
    obs_dim = model.observation_space.shape[0]
    obs_batch = th.randn(args.batch_size, obs_dim)
    obs_single = np.random.default_rng(args.seed).normal(size=(1, obs_dim)).astype(np.float32)

    def forward() -> None:
        with th.no_grad():
            model.actor.action_log_prob(obs_batch)

    def forward_backward() -> None:
        actions, log_prob = model.actor.action_log_prob(obs_batch)
        (actions.sum() + log_prob.sum()).backward()

    def predict() -> None:
        model.predict(obs_single, deterministic=True)

    calls = {
        LOG_PROB_FORWARD.format(batch_size=args.batch_size): forward,
        LOG_PROB_FORWARD_BACKWARD.format(batch_size=args.batch_size): forward_backward,
        "predict deterministic, batch 1": predict,
    }
    times = {f"{name} (us)": time_per_call_us(fn, args.micro_iterations) for name, fn in calls.items()}
    return times, {f"{name} (aten ops)": aten_ops_per_call(fn) for name, fn in calls.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--updates", type=int, default=2000, help="timed env steps, one SAC update each")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--critic-net-arch", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--micro-iterations", type=int, default=500, help="timed calls per micro-benchmark")
    parser.add_argument("--threads", type=int, default=th.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--lsp-kwargs", type=json.loads, default={}, help="LSPPolicy flow settings (JSON); default: its defaults"
    )
    parser.add_argument(
        "--optimizer-kwargs",
        type=json.loads,
        default=None,
        help="optimizer_kwargs of both policies (JSON), e.g. '{\"fused\": true}' for the same Adam step in both; "
        "default: each policy's own (LSPPolicy's actor takes a fused step, SB3's a per-tensor loop)",
    )
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)

    results: dict[str, dict[str, list[float]]] = {policy: {} for policy in POLICIES}
    op_counts: dict[str, dict[str, int]] = {}
    for repetition in range(args.repetitions):
        for policy in POLICIES:
            measured, op_counts[policy] = training_benchmarks(policy, args)
            times, actor_ops = actor_micro_benchmarks(policy, args)
            measured |= times
            op_counts[policy] |= actor_ops
            for name, value in measured.items():
                results[policy].setdefault(name, []).append(value)
            print(
                f"repetition {repetition + 1}/{args.repetitions} {policy}: " + ", ".join(f"{v:.1f}" for v in measured.values())
            )

    print()
    print(f"{date.today()} · {cpu_model()} · {th.get_num_threads()} torch thread(s)")
    print(f"torch {th.__version__} · {args.env} · batch {args.batch_size} · critic {args.critic_net_arch}")
    print(f"LSPPolicy flow settings: {json.dumps(args.lsp_kwargs) if args.lsp_kwargs else 'its defaults'}")
    optimizers = json.dumps(args.optimizer_kwargs) if args.optimizer_kwargs is not None else "each policy's own"
    print(f"optimizer_kwargs: {optimizers}")
    print(f"median over {args.repetitions} alternating repetitions (min-max in brackets)")
    print()
    print("| measure | MlpPolicy | LSPPolicy | LSP speed / MLP speed (min-max) |")
    print("|---|---|---|---|")
    for name in results["MlpPolicy"]:
        cells = [f"{statistics.median(v):.1f} [{min(v):.1f}-{max(v):.1f}]" for v in (results[p][name] for p in POLICIES)]
        pairs = zip(results["MlpPolicy"][name], results["LSPPolicy"][name], strict=True)
        # > 1: LSPPolicy is faster (a rate is higher, a time per call lower)
        ratios = [lsp / mlp if name.endswith("/s") else mlp / lsp for mlp, lsp in pairs]
        spread = f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"
        print(f"| {name} | {cells[0]} | {cells[1]} | {spread} |")
    for name, mlp_ops in op_counts["MlpPolicy"].items():  # the same in every repetition
        lsp_ops = op_counts["LSPPolicy"][name]
        print(f"| {name} | {mlp_ops} | {lsp_ops} | {mlp_ops / lsp_ops:.2f}x |")


if __name__ == "__main__":
    main()
