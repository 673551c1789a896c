"""The bijectors on their own: exact inverses, exact log-determinants, bounded scales, D = 1."""

import math

import pytest
import torch as th
from stable_baselines3.common.distributions import TanhBijector
from torch.autograd.functional import jacobian

from sb3_lsp.flows import AffineCoupling, ConditionalRealNVP, ElementwiseAffine, TanhSquash

CONTEXT_DIM = 5


def make_flow(dim: int, n_layers: int = 2, hidden: int | None = None) -> ConditionalRealNVP:
    th.manual_seed(dim * 10 + n_layers)
    flow = ConditionalRealNVP(dim, CONTEXT_DIM, n_layers, [hidden or dim], log_scale_bound=5.0).double()
    # Larger weights than the default init, so the test exercises strongly non-linear maps.
    with th.no_grad():
        for param in flow.parameters():
            param.mul_(2.0)
    return flow


@pytest.mark.parametrize("dim", [1, 2, 3, 6, 8, 21])
@pytest.mark.parametrize("n_layers", [1, 2, 4])
def test_inverse_undoes_forward(dim: int, n_layers: int) -> None:
    flow = make_flow(dim, n_layers)
    context = th.randn(64, CONTEXT_DIM, dtype=th.float64)
    h = th.randn(64, dim, dtype=th.float64)
    u, log_det = flow(h, context)
    h_back, inv_log_det = flow.inverse(u, context)
    assert th.allclose(h_back, h, atol=1e-5, rtol=0)
    assert th.allclose(inv_log_det, -log_det, atol=1e-8)

    u_other = 3.0 * th.randn(64, dim, dtype=th.float64)
    h_other, _ = flow.inverse(u_other, context)
    u_back, _ = flow(h_other, context)
    assert th.allclose(u_back, u_other, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dim", [1, 2, 3, 6])
@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_log_det_matches_autograd_jacobian(dim: int, n_layers: int) -> None:
    flow = make_flow(dim, n_layers)
    context = th.randn(8, CONTEXT_DIM, dtype=th.float64)
    h = th.randn(8, dim, dtype=th.float64)
    _, log_det = flow(h, context)
    for i in range(8):
        jac = jacobian(lambda x, i=i: flow(x.unsqueeze(0), context[i : i + 1])[0].squeeze(0), h[i])
        assert th.allclose(log_det[i], th.linalg.slogdet(jac).logabsdet, atol=1e-9)


def test_halves_alternate_so_two_layers_touch_every_coordinate() -> None:
    flow = make_flow(5, n_layers=2)
    context = th.randn(1, CONTEXT_DIM, dtype=th.float64)
    h = th.randn(1, 5, dtype=th.float64)
    first_layer_out, _ = flow.layers[0](h, context)
    # Layer 0 transforms the first 5 // 2 = 2 coordinates, conditioned on the last 3.
    assert th.equal(first_layer_out[:, 2:], h[:, 2:])
    assert not th.allclose(first_layer_out[:, :2], h[:, :2])
    second_layer_out, _ = flow.layers[1](first_layer_out, context)
    assert th.equal(second_layer_out[:, :2], first_layer_out[:, :2])
    assert not th.allclose(second_layer_out[:, 2:], first_layer_out[:, 2:])


def test_one_dimensional_flow_is_an_observation_conditioned_affine_map() -> None:
    flow = make_flow(1, n_layers=2)
    context_a = th.randn(1, CONTEXT_DIM, dtype=th.float64)
    context_b = th.randn(1, CONTEXT_DIM, dtype=th.float64)
    h = th.linspace(-3, 3, 7, dtype=th.float64).unsqueeze(-1)

    def scale_and_shift(context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        u, log_det = flow(h, context.expand(7, -1))
        slope = (u[1:] - u[:-1]) / (h[1:] - h[:-1])
        # An affine map: constant slope equal to exp(log_det), so every layer really scales.
        assert th.allclose(slope, slope[0].expand_as(slope), atol=1e-10)
        assert th.allclose(slope.log().squeeze(-1), log_det[1:], atol=1e-10)
        return slope[0], u[3]  # u at h = 0 is the shift

    scale_a, shift_a = scale_and_shift(context_a)
    scale_b, shift_b = scale_and_shift(context_b)
    assert not th.allclose(scale_a, th.ones_like(scale_a))
    assert not th.allclose(scale_a, scale_b)
    assert not th.allclose(shift_a, shift_b)
    # Every layer transforms the single coordinate, and its scale and shift are learnable.
    assert all(isinstance(layer, ElementwiseAffine) for layer in flow.layers)
    u, log_det = flow(h, context_a.expand(7, -1))
    (u.sum() + log_det.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_log_scale_is_softly_bounded() -> None:
    layer = AffineCoupling(4, CONTEXT_DIM, transform_first=True, split=2, hidden_sizes=[4], log_scale_bound=2.0)
    with th.no_grad():
        layer.scale_net[-1].bias.fill_(1e4)  # a raw log-scale that would overflow exp()
    x = th.randn(16, 4)
    y, log_det = layer(x, th.randn(16, CONTEXT_DIM))
    assert th.isfinite(y).all()
    assert (log_det <= 2 * 2.0 + 1e-5).all()  # two transformed coordinates, each |s| <= 2


def test_tanh_log_det_is_exact_and_finite_at_extremes() -> None:
    u = th.tensor([[-100.0, -20.0, -1.0, 0.0, 0.5, 20.0, 100.0]], dtype=th.float64)
    a, log_det = TanhSquash.forward(u)
    # log(1 - tanh(u)^2) = log(4) - 2 log(e^u + e^-u), evaluated with logaddexp as a reference
    reference = (math.log(4.0) - 2 * th.logaddexp(u, -u)).sum(-1)
    assert th.isfinite(log_det).all()
    assert th.allclose(log_det, reference, atol=1e-10)
    assert th.equal(a, th.tanh(u))

    edges = th.tensor([[-1.0, 1.0]])
    u_edge, inv_log_det = TanhSquash.inverse(edges)
    assert th.isfinite(u_edge).all() and th.isfinite(inv_log_det).all()
    assert (u_edge.sign() == edges.sign()).all()


def test_tanh_log_det_with_sb3s_epsilon_is_sb3s_and_floors_at_log_epsilon() -> None:
    u = th.tensor([[-100.0, -20.0, -1.0, 0.0, 0.5, 20.0, 100.0]])
    epsilon = 1e-6
    _, log_det = TanhSquash.forward(u, epsilon=epsilon)
    per_coordinate = th.log(1 - TanhBijector.forward(u) ** 2 + epsilon)  # SB3's squashed Gaussian
    assert th.allclose(log_det, per_coordinate.sum(-1))
    assert per_coordinate[0, [0, 1, 5, 6]].allclose(th.tensor(math.log(epsilon)))
    # d/du of the log-det: -2 tanh(u) exactly, but 0 once saturated with the epsilon
    u = th.tensor([[0.5, 20.0]], requires_grad=True)
    (gradient,) = th.autograd.grad(TanhSquash.log_abs_det_jacobian(u, epsilon).sum(), u)
    assert gradient[0, 0] == pytest.approx(-2 * math.tanh(0.5), rel=1e-4) and gradient[0, 1] == 0.0
    (gradient,) = th.autograd.grad(TanhSquash.log_abs_det_jacobian(u).sum(), u)
    assert gradient[0, 1] == pytest.approx(-2.0)
    # Actions on the box edges: -log(epsilon) per coordinate, as SB3's log_prob(actions) gives
    edges = th.tensor([[-1.0, 1.0]])
    u_edge, inv_log_det = TanhSquash.inverse(edges, epsilon=epsilon)
    assert th.isfinite(u_edge).all() and inv_log_det.item() == pytest.approx(-2 * math.log(epsilon), rel=1e-6)


def test_the_old_squash_name_still_imports_with_a_deprecation_warning() -> None:
    import sb3_lsp

    with pytest.warns(DeprecationWarning, match="TanhSquash"):
        assert sb3_lsp.TanhBijector is TanhSquash
    with pytest.raises(ValueError, match=r"\(dim 1: ElementwiseAffine\)"):
        AffineCoupling(1, CONTEXT_DIM, transform_first=True, split=1, hidden_sizes=[4], log_scale_bound=2.0)
