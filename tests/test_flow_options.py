"""The flow options (``policy_kwargs``): exact math for each, the Gaussian start, saving, old weights."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC
from stable_baselines3 import SAC
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from test_policy import jacobian_log_prob  # the same independent reference as the default flow's tests
from torch import nn

from benchmarks.twin_runs import actor_weights, gaussian_layer_twin, largest_difference, on_the_same_buffer, train_in_step
from sb3_lsp import FLOW_PRESETS, SB3_SQUASH_EPSILON, LSPPolicy
from sb3_lsp.flows import standard_normal_log_prob

OBS_DIM = 5

#: One entry per option, each on its own over the paper's flow, plus the default flow and every option at once.
OPTIONS = {
    "default (gaussian_start)": {"flow": "gaussian_start"},
    "identity_init": {"identity_init": True},
    "gaussian_base": {"gaussian_base": True},
    "embedding_layer_norm": {"embedding_layer_norm": True},
    "embedding_output_activation": {"embedding_output_activation": True},
    "coupling_layer_norm": {"coupling_layer_norm": True},
    "coupling_sizes_and_activation": {"coupling_net_arch": [32, 16], "coupling_activation_fn": nn.LeakyReLU},
    "fused_coupling": {"fused_coupling": True},
    "context_projection": {"context_projection": True},
    "context_projection_unfused_gaussian": {"context_projection": True, "gaussian_base": True, "coupling_net_arch": [4, 3]},
    "no_couplings (the Gaussian layer alone)": {"flow": "gaussian_start", "n_coupling_layers": 0},
    "squash_epsilon (SB3's)": {"flow": "gaussian_start", "squash_epsilon": SB3_SQUASH_EPSILON},
    "all": {
        "identity_init": True,
        "gaussian_base": True,
        "embedding_layer_norm": True,
        "embedding_output_activation": True,
        "coupling_layer_norm": True,
        "coupling_net_arch": [16, 16],
        "coupling_activation_fn": nn.ReLU,
        "fused_coupling": True,
        "context_projection": True,
        "n_coupling_layers": 3,
        "squash_epsilon": SB3_SQUASH_EPSILON,
    },
}


def make_actor(action_dim: int, options: dict, seed: int = 0):
    """An actor with the options, its weights perturbed a little so that no layer is the identity any more."""
    th.manual_seed(seed)
    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
    actor = LSPPolicy(observation_space, action_space, lambda _: 3e-4, **{"flow": "paper_text", **options}).actor
    with th.no_grad():
        for param in actor.parameters():
            param.add_(0.05 * th.randn_like(param))
    return actor


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("action_dim", [1, 3])
def test_inverse_round_trip_and_log_prob_match_the_autograd_jacobian(option: str, action_dim: int) -> None:
    # float32: SB3's preprocessing casts observations to float32
    actor = make_actor(action_dim, OPTIONS[option])
    obs = th.randn(6, OBS_DIM)
    h = 0.7 * th.randn(6, action_dim)
    actions = actor.latent_to_action(obs, h)
    assert th.allclose(actor.action_to_latent(obs, actions), h, atol=1e-3)
    assert th.allclose(actor.log_prob(obs, actions), jacobian_log_prob(actor, obs, h), atol=2e-3, rtol=1e-4)
    sampled, sampled_log_prob = actor.action_log_prob(obs)
    keep = (sampled.abs() < 0.999).all(dim=-1)  # away from float32 saturation of tanh
    assert th.allclose(sampled_log_prob[keep], actor.log_prob(obs, sampled)[keep], atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("action_dim", [1, 3])
def test_acting_shortcuts_give_the_flows_own_values(option: str, action_dim: int) -> None:
    # Acting skips the log-determinants and maps the latent's mode directly; neither may change u.
    actor = make_actor(action_dim, OPTIONS[option])
    obs, h = th.randn(6, OBS_DIM), th.randn(6, action_dim)
    with th.no_grad():
        context = actor.embed(obs)
        u, _ = actor.flow(h, context)
        u_fast, no_log_det = actor.flow(h, context, with_log_det=False)
        assert no_log_det is None and th.equal(u_fast, u)
        h_back, _ = actor.flow.inverse(u, context)
        h_back_fast, no_log_det = actor.flow.inverse(u, context, with_log_det=False)
        assert no_log_det is None and th.equal(h_back_fast, h_back)
        mode, _ = actor.flow(th.zeros_like(h), context)
        assert th.allclose(actor.flow.mode(context), mode, atol=1e-6)
        assert th.allclose(actor(obs, deterministic=True), th.tanh(mode), atol=1e-6)


@pytest.mark.parametrize("option", OPTIONS)
def test_density_integrates_to_one(option: str) -> None:
    actor = make_actor(2, OPTIONS[option])
    flow = copy.deepcopy(actor.flow).double()
    # Midpoint rule for the flow's density before the squash, p_u(u) = N(h) |det dh/du|, on a grid
    # wide enough for every option's spread (tanh would pile that mass up at the box edges, where a
    # grid cannot resolve it; the squash's own log-det is checked exactly in test_flows.py).
    n, half_width = 1500, 30.0
    centers = (th.arange(n, dtype=th.float64) + 0.5) / n * 2 * half_width - half_width
    u = th.cartesian_prod(centers, centers)
    for obs in th.randn(2, 1, OBS_DIM):
        with th.no_grad():
            context = actor.embed(obs).double().expand(u.shape[0], -1)
            h, inv_log_det = flow.inverse(u, context)
            density = (standard_normal_log_prob(h) + inv_log_det).exp()
        assert density.sum().item() * (2 * half_width / n) ** 2 == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("option", OPTIONS)
def test_gradients_reach_every_parameter(option: str) -> None:
    actor = make_actor(3, OPTIONS[option])
    actions, log_prob = actor.action_log_prob(th.randn(32, OBS_DIM))
    (actions.sum() + log_prob.sum()).backward()
    for name, param in actor.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_identity_init_starts_every_coupling_layer_as_the_identity() -> None:
    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    for fused, projection, sizes in [(False, False, [4]), (True, False, [4]), (True, True, [4]), (False, True, [])]:
        actor = LSPPolicy(
            observation_space,
            spaces.Box(-1, 1, (4,)),
            lambda _: 3e-4,
            flow="paper_text",
            identity_init=True,
            fused_coupling=fused,
            context_projection=projection,
            coupling_net_arch=sizes,
        ).actor
        context, h = th.randn(8, actor.embedding_dim), th.randn(8, 4)
        u, log_det = actor.flow(h, context)
        assert th.equal(u, h) and th.equal(log_det, th.zeros(8))


def _projected_state(plain: nn.Module, projected: nn.Module) -> dict[str, th.Tensor]:
    """``plain``'s weights in the parameters of ``projected`` (the same flow with context_projection):
    each first layer of an s/t network split into its x part and its rows of the one projection."""
    state = {key: value for key, value in plain.state_dict().items() if not key.startswith("flow.")}
    state["_extra_state"] = projected.state_dict()["_extra_state"]
    rows, biases = [], []
    for index, layer in enumerate(plain.flow.layers):
        if hasattr(layer, "mean_log_std"):  # the Gaussian first layer: its Linear is its rows
            rows.append(layer.mean_log_std.weight)
            biases.append(layer.mean_log_std.bias)
            continue
        for name, net in layer.named_children():
            first, x_dim = net[0], net[0].in_features - plain.embedding_dim
            rows.append(first.weight[:, x_dim:])
            biases.append(first.bias)
            if x_dim:
                state[f"flow.layers.{index}.{name}.x_weight"] = first.weight[:, :x_dim]
            for key, value in net[1:].state_dict().items():  # the layers after the first, one index down
                position, rest = key.split(".", 1)
                state[f"flow.layers.{index}.{name}.rest.{int(position) - 1}.{rest}"] = value
    state["flow.context_projection.weight"] = th.cat(rows)
    state["flow.context_projection.bias"] = th.cat(biases)
    return state


@pytest.mark.parametrize("action_dim", [1, 3])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"fused_coupling": True, "gaussian_base": True},
        {"gaussian_base": True, "coupling_net_arch": []},
        {"fused_coupling": True, "coupling_layer_norm": True, "coupling_net_arch": [4, 3], "n_coupling_layers": 3},
    ],
    ids=["separate_s_t", "fused_gaussian", "no_hidden_layer", "layer_norm_deep"],
)
def test_context_projection_is_the_same_function_in_other_parameters(action_dim: int, options: dict) -> None:
    """With the unprojected flow's weights moved into its parameters, the projected flow computes the same actions
    and log-likelihoods, and it has as many parameters (a re-parameterisation, not another model)."""
    plain = make_actor(action_dim, options)
    projected = make_actor(action_dim, {**options, "context_projection": True}, seed=1)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in projected.parameters())
    projected.load_state_dict(_projected_state(plain, projected))
    obs, h = th.randn(32, OBS_DIM), 0.8 * th.randn(32, action_dim)
    with th.no_grad():
        actions = plain.latent_to_action(obs, h)
        assert th.allclose(projected.latent_to_action(obs, h), actions, atol=1e-6)
        assert th.allclose(projected.log_prob(obs, actions), plain.log_prob(obs, actions), atol=1e-4, rtol=1e-5)
        assert th.allclose(projected(obs, deterministic=True), plain(obs, deterministic=True), atol=1e-6)


def test_context_projection_starts_from_the_same_distribution_of_weights() -> None:
    """Each projected row is drawn as nn.Linear draws the first layer it stands for: uniform in +-1/sqrt(fan_in)."""
    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    flow = LSPPolicy(
        observation_space, spaces.Box(-1, 1, (3,)), lambda _: 3e-4, context_projection=True, coupling_net_arch=[64]
    ).actor.flow
    context_dim = flow.context_projection.in_features
    widths = [layer.context_width for layer in flow.layers]
    fan_ins = [context_dim] + [context_dim + 3 - layer.n_transformed for layer in flow.layers[1:]]
    with th.no_grad():
        for rows, fan_in in zip(flow.context_projection.weight.split(widths), fan_ins, strict=True):
            bound = 1 / np.sqrt(fan_in)
            assert rows.abs().max() <= bound and abs(rows.std().item() / (bound / np.sqrt(3)) - 1) < 0.05
        for layer in flow.layers[1:]:
            net = layer.scale_shift_net
            assert net.x_weight.abs().max() <= 1 / np.sqrt(context_dim + 3 - layer.n_transformed)


@pytest.mark.parametrize("action_dim", [1, 2, 6])
@pytest.mark.parametrize(
    "flow_kwargs",
    [
        {},
        {"context_projection": False},
        {"flow": "paper_text", "gaussian_base": True, "identity_init": True},
        {"n_coupling_layers": 0},
    ],
    ids=["default", "default_unprojected", "paper_text", "no_couplings"],
)
def test_gaussian_start_is_exactly_sb3s_squashed_gaussian(action_dim: int, flow_kwargs: dict) -> None:
    """The default flow, and any flow with gaussian_base and identity_init, starts as SB3's squashed Gaussian."""
    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    policy = LSPPolicy(observation_space, spaces.Box(-1.0, 1.0, (action_dim,), np.float32), lambda _: 3e-4, **flow_kwargs)
    actor = policy.actor
    obs = th.randn(64, OBS_DIM)
    mean, log_std = actor.flow.base_mean_and_log_std(actor.embed(obs))
    sb3 = SquashedDiagGaussianDistribution(action_dim).proba_distribution(mean, log_std)
    with th.no_grad():
        actions = sb3.sample()
        actions = actions[(actions.abs() < 0.999).all(dim=-1)]  # SB3 adds 1e-6 inside log(1 - a^2)
        obs = obs[: actions.shape[0]]
        sb3 = SquashedDiagGaussianDistribution(action_dim).proba_distribution(mean[: len(obs)], log_std[: len(obs)])
        assert th.allclose(actor.log_prob(obs, actions), sb3.log_prob(actions), atol=1e-3, rtol=1e-4)
        # The deterministic action is SB3's too: tanh(mu).
        assert th.allclose(actor(obs, deterministic=True), th.tanh(mean[: len(obs)]), atol=1e-6)
    # log sigma is clamped to SB3's [-20, 2]
    with th.no_grad():
        bias = actor.flow.context_projection.bias if actor.context_projection else actor.flow.layers[0].mean_log_std.bias
        bias.fill_(100.0)
    _, log_std = actor.flow.base_mean_and_log_std(actor.embed(obs))
    assert (log_std == 2.0).all()


def test_a_named_flow_is_a_starting_point_and_an_unknown_name_is_refused() -> None:
    observation_space, action_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32), spaces.Box(-1, 1, (3,))
    paper = LSPPolicy(observation_space, action_space, lambda _: 3e-4, flow="paper_text", identity_init=True).actor
    assert paper.flow_kwargs() == {**FLOW_PRESETS["paper_text"](3), "identity_init": True}
    assert LSPPolicy(observation_space, action_space, lambda _: 3e-4).actor.flow_kwargs() == FLOW_PRESETS["gaussian_start"](3)
    with pytest.raises(ValueError, match=r"flow must name one of the flows \['gaussian_start', 'paper_text'\]"):
        LSPPolicy(observation_space, action_space, lambda _: 3e-4, flow="paper")


def test_numpy_scalars_are_accepted() -> None:
    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    actor = LSPPolicy(
        observation_space,
        spaces.Box(-1, 1, (2,)),
        lambda _: 3e-4,
        coupling_net_arch=[np.int64(4)],
        log_scale_bound=np.float32(2.0),
        n_coupling_layers=np.int32(3),
        gaussian_base=np.bool_(True),
        coupling_activation_fn="nn.ReLU",  # YAML gives names
    ).actor
    assert actor.coupling_activation_fn is nn.ReLU
    assert actor.coupling_net_arch == [4] and type(actor.coupling_net_arch[0]) is int
    assert actor.log_scale_bound == 2.0 and actor.n_coupling_layers == 3 and actor.gaussian_base is True


@pytest.mark.parametrize("n_coupling_layers", [0, 2])
def test_sb3s_squash_epsilon_gives_sb3s_log_prob_also_at_saturation(n_coupling_layers: int) -> None:
    """With squash_epsilon=1e-6 the Gaussian start is SB3's squashed Gaussian, saturated actions included."""
    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    policy = LSPPolicy(
        observation_space,
        spaces.Box(-1.0, 1.0, (3,), np.float32),
        lambda _: 3e-4,
        n_coupling_layers=n_coupling_layers,
        squash_epsilon=SB3_SQUASH_EPSILON,
    )
    actor = policy.actor
    obs = 4.0 * th.randn(256, OBS_DIM)
    with th.no_grad():
        # Means of up to about +-20: a large share of the actions is exactly +-1 in float32
        projection = actor.flow.context_projection
        projection.weight[:3] *= 50.0
        context = actor.embed(obs)
        mean, log_std = actor.flow.base_mean_and_log_std(context)
        h = th.randn(256, 3)
        gaussian_actions = mean + log_std.exp() * h
        sb3 = SquashedDiagGaussianDistribution(3).proba_distribution(mean, log_std)
        sb3_log_prob = sb3.log_prob(th.tanh(gaussian_actions), gaussian_actions)
        actions, log_prob = actor.decode(context, h, with_log_prob=True)
        assert (actions.abs() == 1.0).any(dim=-1).float().mean() > 0.2
        assert th.isfinite(log_prob).all()
        assert th.allclose(log_prob, sb3_log_prob, atol=1e-4, rtol=1e-5)
        assert th.allclose(actions, th.tanh(gaussian_actions), atol=1e-6)
        # Given actions, as SB3's log_prob(actions) inverts them: at the box edges too
        assert th.allclose(actor.log_prob(obs, actions), sb3.log_prob(actions), atol=1e-3, rtol=1e-5)
        # The exact squash differs where the actions saturate, and only there
        exact = LSPPolicy(observation_space, policy.action_space, lambda _: 3e-4, n_coupling_layers=n_coupling_layers)
        exact.actor.load_state_dict({**actor.state_dict(), "_extra_state": exact.actor.get_extra_state()})
        _, exact_log_prob = exact.actor.decode(context, h, with_log_prob=True)
        saturated = (actions.abs() == 1.0).any(dim=-1)
        assert (exact_log_prob[saturated] > log_prob[saturated] + 1.0).all()
        inside = (actions.abs() < 0.999).all(dim=-1)  # where 1e-6 is small against 1 - a^2
        assert inside.any() and th.allclose(exact_log_prob[inside], log_prob[inside], atol=2e-3)


@pytest.mark.parametrize("algo", [SAC, TQC])
def test_the_gaussian_layer_alone_with_sb3s_epsilon_trains_as_sb3s_mlppolicy(algo) -> None:
    """Given MlpPolicy's weights and replay buffer, SAC's and TQC's updates of the Gaussian layer alone are SB3's."""
    model = algo("MlpPolicy", "Pendulum-v1", learning_starts=500, seed=0)
    twin = gaussian_layer_twin(model)
    before = actor_weights(model).clone()
    assert th.equal(before, actor_weights(twin))
    model.learn(500)  # random actions: the buffer
    on_the_same_buffer(model, twin)
    train_in_step(model, twin, seed=1, updates=50)
    assert (actor_weights(model) - before).abs().max() > 1e-3  # the updates moved the actor
    assert (actor_weights(model) - actor_weights(twin)).abs().max() < 1e-5
    assert model.log_ent_coef.item() == pytest.approx(twin.log_ent_coef.item(), abs=1e-6)
    obs = th.randn(16, 3)
    with th.no_grad():
        assert th.allclose(model.actor(obs, deterministic=True), twin.actor(obs, deterministic=True), atol=1e-5)


PROBE = """
import json, sys
import numpy as np, torch as th
import sb3_lsp
from sb3_contrib import TQC
from stable_baselines3 import SAC
algo, path, probe_path = sys.argv[1:]
model = {"sac": SAC, "tqc": TQC}[algo].load(path)
probe = np.load(probe_path)
actions, _ = model.predict(probe["obs"], deterministic=True)
with th.no_grad():
    log_prob = model.actor.log_prob(th.as_tensor(probe["obs"]), th.as_tensor(probe["actions"]))
kwargs = model.actor.flow_kwargs()
kwargs["coupling_activation_fn"] = kwargs["coupling_activation_fn"].__name__
print(json.dumps({"deterministic": actions.tolist(), "log_prob": log_prob.tolist(), "kwargs": kwargs}))
"""


@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_options_survive_save_and_load_in_a_fresh_process(algo: str, tmp_path: Path) -> None:
    options = {**OPTIONS["all"], "coupling_activation_fn": nn.LeakyReLU}
    model = {"sac": SAC, "tqc": TQC}[algo](
        "LSPPolicy", "Pendulum-v1", learning_starts=50, seed=0, policy_kwargs={**options, "net_arch": [32, 32]}
    )
    model.learn(120)
    model.save(tmp_path / "model.zip")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(8, 3)).astype(np.float32)
    actions = rng.uniform(-0.9, 0.9, size=(8, 1)).astype(np.float32)
    np.savez(tmp_path / "probe.npz", obs=obs, actions=actions)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, algo, str(tmp_path / "model.zip"), str(tmp_path / "probe.npz")],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {**model.actor.flow_kwargs(), "coupling_activation_fn": "LeakyReLU"}
    assert loaded["kwargs"] == expected
    deterministic, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(np.array(loaded["deterministic"], dtype=np.float32), deterministic)
    with th.no_grad():
        log_prob = model.actor.log_prob(th.as_tensor(obs), th.as_tensor(actions)).numpy()
    np.testing.assert_allclose(np.array(loaded["log_prob"], dtype=np.float32), log_prob, rtol=0, atol=1e-6)


@pytest.mark.parametrize("saved_by", ["release 0.1.0", "this release"])
def test_weights_of_another_flow_rebuild_the_actor_in_place(saved_by: str) -> None:
    """Loading weights of a flow other than the defaults: the saved flow wins and SB3's aliases stay valid."""
    old = SAC("LSPPolicy", "Pendulum-v1", seed=0, policy_kwargs={"flow": "paper_text"})
    state = old.policy.state_dict()
    if saved_by == "release 0.1.0":
        del state["actor._extra_state"]  # that release saved no flow settings with the weights
    new = SAC("LSPPolicy", "Pendulum-v1", seed=1)  # this release's default flow, the Gaussian start
    assert new.actor.gaussian_base and not old.actor.gaussian_base
    actor_object = new.actor
    new.policy.load_state_dict(state)
    assert new.actor is actor_object is new.policy.actor
    assert new.actor.flow_kwargs() == old.actor.flow_kwargs() == new.policy.flow_kwargs
    assert {id(p) for p in new.actor.optimizer.param_groups[0]["params"]} == {id(p) for p in new.actor.parameters()}
    obs = th.randn(16, 3)
    with th.no_grad():
        assert th.equal(new.actor(obs, deterministic=True), old.actor(obs, deterministic=True))


@pytest.mark.parametrize("algo", [SAC, TQC])
def test_coupling_lr_scale_slows_the_couplings_alone_and_survives_save_and_load(algo, tmp_path: Path) -> None:
    """Adam's first step moves each parameter by its learning rate: the couplings' by 0.1 of the others'."""
    lr = 1e-3
    kwargs = dict(learning_rate=lr, learning_starts=50, batch_size=32, buffer_size=200, seed=0)
    model = algo("LSPPolicy", "sb3_lsp/MultiGoal-v0", policy_kwargs={"coupling_lr_scale": 0.1}, **kwargs)
    coupling_ids = {id(p) for layer in model.actor.flow._couplings for p in layer.parameters()}
    before = {name: p.detach().clone() for name, p in model.actor.named_parameters()}
    model.learn(51)  # one gradient step (SAC updates once num_timesteps passes learning_starts)
    moved = {name: (p.detach() - before[name]).abs().max().item() for name, p in model.actor.named_parameters()}
    is_coupling = {name: id(p) in coupling_ids for name, p in model.actor.named_parameters()}
    coupling_step = max(step for name, step in moved.items() if is_coupling[name])
    other_step = max(step for name, step in moved.items() if not is_coupling[name])
    assert coupling_step == pytest.approx(0.1 * lr, rel=1e-3) and other_step == pytest.approx(lr, rel=1e-3)
    # SB3 resets every group to its schedule before each update; the couplings keep their share
    groups = model.actor.optimizer.param_groups
    assert groups[1]["lr"] == pytest.approx(0.1 * groups[0]["lr"])

    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip", env=model.get_env())
    saved, restored = model.actor.optimizer.state_dict(), loaded.actor.optimizer.state_dict()
    assert loaded.policy.coupling_lr_scale == 0.1 and restored["param_groups"] == saved["param_groups"]
    for index, state in saved["state"].items():
        assert all(th.equal(value, restored["state"][index][key]) for key, value in state.items())
    loaded.learn(10, reset_num_timesteps=False)
    assert loaded.actor.optimizer.param_groups[1]["lr"] == pytest.approx(0.1 * loaded.actor.optimizer.param_groups[0]["lr"])

    with pytest.raises(ValueError, match="coupling_lr_scale must be a finite positive number"):
        algo("LSPPolicy", "sb3_lsp/MultiGoal-v0", policy_kwargs={"coupling_lr_scale": 0.0}, **kwargs)


@pytest.mark.parametrize("algo", [SAC, TQC])
def test_the_actor_takes_a_fused_adam_step_unless_told_otherwise(algo, tmp_path: Path) -> None:
    """The flow actor's Adam is fused by default (the critic's stays SB3's); a saved optimizer keeps its step."""
    kwargs = dict(learning_starts=50, batch_size=32, buffer_size=200, seed=0)
    fused = algo("LSPPolicy", "sb3_lsp/MultiGoal-v0", **kwargs)
    start = copy.deepcopy(fused.actor)
    assert fused.actor.optimizer.defaults["fused"] and not fused.critic.optimizer.defaults["fused"]
    # The same update: ten gradient steps of each from one seed (each built and trained in turn, since
    # SB3 seeds torch's and numpy's global generators when it builds a model) end at the same weights
    fused.learn(60)
    looped = algo("LSPPolicy", "sb3_lsp/MultiGoal-v0", policy_kwargs={"optimizer_kwargs": {"fused": False}}, **kwargs)
    assert not looped.actor.optimizer.defaults["fused"] and largest_difference(start, looped.actor) == 0
    looped.learn(60)
    assert largest_difference(start, fused.actor) > 1e-3  # the steps moved the actor
    assert largest_difference(fused.actor, looped.actor) < 1e-5

    chosen = algo("LSPPolicy", "sb3_lsp/MultiGoal-v0", policy_kwargs={"optimizer_kwargs": {"foreach": True}}, **kwargs)
    assert chosen.actor.optimizer.defaults["foreach"] and not chosen.actor.optimizer.defaults["fused"]
    rmsprop = algo("LSPPolicy", "sb3_lsp/MultiGoal-v0", policy_kwargs={"optimizer_class": th.optim.RMSprop}, **kwargs)
    assert type(rmsprop.actor.optimizer) is th.optim.RMSprop and "fused" not in rmsprop.actor.optimizer.defaults

    fused.save(tmp_path / "fused.zip")
    looped.save(tmp_path / "looped.zip")
    assert algo.load(tmp_path / "fused.zip").actor.optimizer.param_groups[0]["fused"]
    assert not algo.load(tmp_path / "looped.zip").actor.optimizer.param_groups[0]["fused"]
