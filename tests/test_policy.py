"""LSPPolicy inside SB3: exact log-likelihoods, normalised densities, gradients, errors, aliases."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC
from scipy import integrate
from stable_baselines3 import SAC
from torch.autograd.functional import jacobian

import sb3_lsp
from sb3_lsp import LSPPolicy, TQCLSPPolicy
from sb3_lsp.flows import standard_normal_log_prob

OBS_DIM = 5


def make_policy(action_dim: int, **flow_kwargs) -> LSPPolicy:
    observation_space = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
    return LSPPolicy(observation_space, action_space, lambda _: 3e-4, **flow_kwargs)


def random_obs(n: int) -> th.Tensor:
    return th.randn(n, OBS_DIM)


def jacobian_log_prob(actor: sb3_lsp.LSPActor, obs: th.Tensor, h: th.Tensor) -> th.Tensor:
    """log N(h) - log|det J|, J the full autograd Jacobian of h -> a, one sample at a time."""
    log_probs = []
    for i in range(obs.shape[0]):
        jac = jacobian(lambda x, i=i: actor.latent_to_action(obs[i : i + 1], x.unsqueeze(0)).squeeze(0), h[i])
        log_probs.append(standard_normal_log_prob(h[i : i + 1])[0] - th.linalg.slogdet(jac).logabsdet)
    return th.stack(log_probs)


def test_aliases_are_registered_on_sac_and_tqc() -> None:
    assert SAC("LSPPolicy", "Pendulum-v1").policy.__class__ is LSPPolicy
    assert SAC(LSPPolicy, "Pendulum-v1").policy.__class__ is LSPPolicy
    assert TQC("LSPPolicy", "Pendulum-v1").policy.__class__ is TQCLSPPolicy


@pytest.mark.parametrize("action_dim", [1, 2, 3, 6])
def test_log_prob_matches_autograd_jacobian(action_dim: int) -> None:
    actor = make_policy(action_dim).actor
    obs = random_obs(6)
    h = 0.8 * th.randn(6, action_dim)  # keeps tanh away from float32 saturation
    actions = actor.latent_to_action(obs, h)
    expected = jacobian_log_prob(actor, obs, h)
    assert th.allclose(actor.log_prob(obs, actions), expected, atol=2e-3, rtol=1e-4)
    assert th.allclose(actor.action_to_latent(obs, actions), h, atol=1e-3)


@pytest.mark.parametrize("action_dim", [1, 2, 3, 6])
def test_action_log_prob_matches_autograd_jacobian(action_dim: int) -> None:
    actor = make_policy(action_dim).actor
    obs = random_obs(6)
    actions, log_prob = actor.action_log_prob(obs)
    assert actions.shape == (6, action_dim) and log_prob.shape == (6,)
    assert (actions.abs() <= 1).all()
    h = actor.action_to_latent(obs, actions)
    assert th.allclose(log_prob, jacobian_log_prob(actor, obs, h), atol=2e-3, rtol=1e-4)


def test_density_of_1d_policy_integrates_to_one() -> None:
    actor = make_policy(1).actor
    for obs in random_obs(3):
        obs = obs.unsqueeze(0)

        def density(a: float, obs: th.Tensor = obs) -> float:
            return actor.log_prob(obs, th.tensor([[a]], dtype=th.float32)).exp().item()

        total, _ = integrate.quad(density, -1.0, 1.0, limit=200)
        assert total == pytest.approx(1.0, abs=1e-2)


def test_density_of_2d_policy_integrates_to_one() -> None:
    actor = make_policy(2).actor
    # Midpoint rule on a fine grid over the box; the density vanishes at the edges.
    n = 600
    centers = (th.arange(n, dtype=th.float32) + 0.5) / n * 2.0 - 1.0
    grid = th.cartesian_prod(centers, centers)
    cell_area = (2.0 / n) ** 2
    for obs in random_obs(2):
        with th.no_grad():
            log_density = actor.log_prob(obs.expand(grid.shape[0], -1), grid)
        assert log_density.exp().sum().item() * cell_area == pytest.approx(1.0, abs=1e-2)


def test_gradients_reach_every_flow_and_embedding_parameter() -> None:
    # The paper's randomly initialised flow: an identity-started one (the default) passes no gradient to
    # its s/t hidden layers until its zero output layers move (test_flow_options perturbs them first).
    actor = make_policy(3, flow="paper_text", n_coupling_layers=3).actor
    actions, log_prob = actor.action_log_prob(random_obs(32))
    (actions.sum() + log_prob.sum()).backward()
    params = dict(actor.named_parameters())
    assert any(name.startswith("embedding.") for name in params)
    assert sum(name.startswith("flow.layers.2.") for name in params) > 0
    for name, param in params.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_deterministic_action_is_the_image_of_the_prior_mode() -> None:
    policy = make_policy(3)
    obs = random_obs(4)
    expected = policy.actor.latent_to_action(obs, th.zeros(4, 3))
    assert th.allclose(policy._predict(obs, deterministic=True), expected)
    actions, _ = policy.predict(obs.numpy(), deterministic=True)
    np.testing.assert_allclose(actions, expected.detach().numpy(), atol=1e-6)
    stochastic = policy._predict(obs, deterministic=False)
    assert not th.allclose(stochastic, expected)


def test_log_prob_is_finite_on_the_box_edges() -> None:
    actor = make_policy(2).actor
    edges = th.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
    log_prob = actor.log_prob(random_obs(4), edges)
    assert th.isfinite(log_prob).all()
    assert th.isfinite(actor.action_to_latent(random_obs(4), edges)).all()


def test_the_paper_text_flow_follows_the_paper() -> None:
    actor = make_policy(6, flow="paper_text").actor
    assert actor.n_coupling_layers == 2
    assert actor.embedding_net_arch == [128, 128]
    assert actor.embedding_dim == 12
    assert actor.coupling_net_arch == [6]
    assert len(actor.flow.layers) == 2


def test_non_box_action_space_is_rejected() -> None:
    obs_space = spaces.Box(-1, 1, (OBS_DIM,), np.float32)
    with pytest.raises(ValueError, match="Box action space"):
        LSPPolicy(obs_space, spaces.Discrete(3), lambda _: 3e-4)


def test_gsde_is_rejected_with_an_explanation() -> None:
    with pytest.raises(ValueError, match="use_sde=True is not supported"):
        SAC("LSPPolicy", "Pendulum-v1", use_sde=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_coupling_layers": 0, "flow": "paper_text"}, r"n_coupling_layers=0 .* needs gaussian_base=True"),
        ({"n_coupling_layers": -1}, "n_coupling_layers must be a positive integer"),
        ({"n_coupling_layers": 2.5}, "n_coupling_layers must be a positive integer"),
        ({"coupling_net_arch": [0]}, r"coupling_net_arch entries \(hidden layer sizes\) must be a positive integer"),
        ({"coupling_net_arch": 64}, "coupling_net_arch must be a list of positive integers"),
        ({"embedding_net_arch": [128, -1]}, "embedding_net_arch entries"),
        ({"embedding_dim": 0}, "embedding_dim must be a positive integer"),
        ({"log_scale_bound": 0.0}, "log_scale_bound must be a finite positive number"),
        ({"log_scale_bound": float("inf")}, "log_scale_bound must be a finite positive number"),
        ({"coupling_activation_fn": "NoSuchLayer"}, "coupling_activation_fn must be an nn.Module class"),
        ({"gaussian_base": "yes"}, "gaussian_base must be True or False"),
        ({"net_arch": {"pi": [64], "qf": [64]}}, "embedding_net_arch"),
        ({"n_couplin_layers": 3}, "policy_kwargs key: 'n_couplin_layers'; did you mean 'n_coupling_layers'"),
    ],
)
def test_invalid_flow_kwargs_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SAC("LSPPolicy", "Pendulum-v1", policy_kwargs=kwargs)


@pytest.mark.parametrize("algo", [SAC, TQC])
@pytest.mark.parametrize("net_arch", [[64, 32], {"qf": [64, 32]}])
def test_critic_net_arch_is_sb3s_as_a_list_or_as_qf(algo, net_arch) -> None:
    model = algo("LSPPolicy", "Pendulum-v1", policy_kwargs={"net_arch": net_arch})
    critic = model.critic.qf0
    critic_layers = [m.out_features for m in critic if isinstance(m, th.nn.Linear)]
    assert critic_layers[:2] == [64, 32]
    # and the critic's arch stays when the policy is saved and loaded on its own
    assert type(model.policy)(**model.policy._get_constructor_parameters()).net_arch == [64, 32]


@pytest.mark.parametrize("name", ["log_std_init", "use_expln", "clip_mean"])
def test_gaussian_only_arguments_are_not_silently_ignored(name: str) -> None:
    value = {"log_std_init": -1.0, "use_expln": True, "clip_mean": 1.0}[name]
    with pytest.warns(UserWarning, match=f"{name} set the Gaussian actor of SB3's MlpPolicy; LSPPolicy's actor is a flow"):
        SAC("LSPPolicy", "Pendulum-v1", policy_kwargs={name: value})


def test_saved_policies_reload_without_a_warning_about_gaussian_arguments(tmp_path) -> None:
    # SB3 writes its Gaussian defaults (log_std_init=-3, ...) into every policy it saves.
    import warnings

    model = SAC("LSPPolicy", "Pendulum-v1")
    model.policy.save(tmp_path / "policy.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        type(model.policy).load(tmp_path / "policy.pkl")


def test_actions_are_rescaled_to_a_non_unit_box() -> None:
    model = SAC("LSPPolicy", "Pendulum-v1", learning_starts=10, seed=1)  # Box(-2, 2)
    model.learn(50)
    obs = th.randn(64, 3)
    actions, _ = model.predict(obs.numpy(), deterministic=False)
    squashed = model.policy.actor(obs)
    assert actions.shape == (64, 1)
    assert (np.abs(actions) <= 2.0).all()
    assert np.abs(actions).max() > 1.0 >= squashed.abs().max().item()


def test_predict_switches_to_evaluation_mode_once_and_then_skips_the_module_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    model = SAC("LSPPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [16, 16]}, seed=0)
    trained = [*model.policy.actor.modules(), *model.policy.critic.modules()]  # not the target critic: always eval
    model.policy.set_training_mode(True)
    assert all(module.training for module in trained)
    obs = np.zeros((1, 3), np.float32)
    model.predict(obs, deterministic=True)
    assert not any(module.training for module in trained)

    calls = []
    original = th.nn.Module.train
    monkeypatch.setattr(th.nn.Module, "train", lambda self, mode=True: calls.append(self) or original(self, mode))
    model.predict(obs, deterministic=True)
    assert calls == []  # already in evaluation mode: no walk
    model.policy.set_training_mode(True)  # what SAC.train() does before each gradient step
    assert calls and all(module.training for module in trained)
