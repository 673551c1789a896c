"""Everything a user saves comes back identical in a fresh Python process."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch as th
from sb3_contrib import TQC
from stable_baselines3 import SAC

from sb3_lsp import LSPPolicy, TQCLSPPolicy

# Tests pass dict(FLOW_KWARGS): SB3 adds "use_sde" to the policy_kwargs dict it is given.
FLOW_KWARGS = {
    "n_coupling_layers": 3,
    "coupling_net_arch": [16, 8],
    "embedding_net_arch": [32],
    "embedding_dim": 7,
    "log_scale_bound": 3.0,
    "net_arch": [48, 24],
}

# Runs in a fresh interpreter: loads a saved model (or policy) and writes what it computes.
PROBE = """
import json, sys
import numpy as np, torch as th
import sb3_lsp
from sb3_contrib import TQC
from stable_baselines3 import SAC

kind, path, probe_path, out_path = sys.argv[1:]
if kind == "policy":
    policy = sb3_lsp.LSPPolicy.load(path)
else:
    policy = {"sac": SAC, "tqc": TQC}[kind].load(path).policy
probe = np.load(probe_path)
obs, actions = th.as_tensor(probe["obs"]), th.as_tensor(probe["actions"])
with th.no_grad():
    deterministic, _ = policy.predict(probe["obs"], deterministic=True)
    log_prob = policy.actor.log_prob(obs, actions).numpy()
actor = policy.actor
kwargs = {name: getattr(actor, name) for name in
          ("n_coupling_layers", "coupling_net_arch", "embedding_net_arch", "embedding_dim", "log_scale_bound")}
np.savez(out_path, deterministic=deterministic, log_prob=log_prob)
print(json.dumps({"class": type(policy).__name__, "kwargs": kwargs, "critic_arch": policy.net_arch}))
"""


def run_probe(kind: str, path: Path, tmp_path: Path, obs: np.ndarray, actions: np.ndarray) -> tuple[dict, dict]:
    probe_path, out_path = tmp_path / "probe.npz", tmp_path / "out.npz"
    np.savez(probe_path, obs=obs, actions=actions)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(path), str(probe_path), str(out_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), dict(np.load(out_path))


def expected_outputs(policy, obs: np.ndarray, actions: np.ndarray) -> dict:
    with th.no_grad():
        deterministic, _ = policy.predict(obs, deterministic=True)
        log_prob = policy.actor.log_prob(th.as_tensor(obs), th.as_tensor(actions)).numpy()
    return {"deterministic": deterministic, "log_prob": log_prob}


def probe_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(16, 3)).astype(np.float32)
    actions = rng.uniform(-0.99, 0.99, size=(16, 1)).astype(np.float32)
    return obs, actions


def assert_round_trip(kind: str, policy, path: Path, tmp_path: Path, expected_class: str) -> None:
    obs, actions = probe_batch(0)
    info, outputs = run_probe(kind, path, tmp_path, obs, actions)
    assert info["class"] == expected_class
    flow_kwargs = {k: v for k, v in FLOW_KWARGS.items() if k != "net_arch"}
    assert info["kwargs"] == flow_kwargs
    assert info["critic_arch"] == FLOW_KWARGS["net_arch"]
    for name, value in expected_outputs(policy, obs, actions).items():
        np.testing.assert_array_equal(outputs[name], value, err_msg=name)


def test_sac_model_round_trips_in_a_fresh_process(tmp_path: Path) -> None:
    model = SAC("LSPPolicy", "Pendulum-v1", learning_starts=50, policy_kwargs=dict(FLOW_KWARGS), seed=3)
    model.learn(150)
    model.save(tmp_path / "model.zip")
    assert_round_trip("sac", model.policy, tmp_path / "model.zip", tmp_path, "LSPPolicy")


def test_policy_round_trips_in_a_fresh_process(tmp_path: Path) -> None:
    model = SAC("LSPPolicy", "Pendulum-v1", learning_starts=50, policy_kwargs=dict(FLOW_KWARGS), seed=4)
    model.learn(120)
    model.policy.save(tmp_path / "policy.pth")
    assert_round_trip("policy", model.policy, tmp_path / "policy.pth", tmp_path, "LSPPolicy")
    # And in this process, through the class method SB3 users call.
    reloaded = LSPPolicy.load(tmp_path / "policy.pth")
    obs, _ = probe_batch(1)
    np.testing.assert_array_equal(reloaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_tqc_with_lsp_policy_trains_saves_and_loads(tmp_path: Path) -> None:
    model = TQC("LSPPolicy", "Pendulum-v1", learning_starts=50, policy_kwargs=dict(FLOW_KWARGS), seed=5)
    actor_before = {k: v.clone() for k, v in model.actor.state_dict().items() if isinstance(v, th.Tensor)}
    model.learn(200)
    assert any(not th.equal(v, model.actor.state_dict()[k]) for k, v in actor_before.items()), "actor did not train"
    assert isinstance(model.policy, TQCLSPPolicy)
    model.save(tmp_path / "tqc.zip")
    assert_round_trip("tqc", model.policy, tmp_path / "tqc.zip", tmp_path, "TQCLSPPolicy")
