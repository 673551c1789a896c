"""The paper's environments: API conformance, seeding, reward formulas, maze walls and goals, observation layout."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_lsp  # noqa: F401  (registers the environments)
from sb3_lsp.envs import GOALS

ENV_IDS = [
    "sb3_lsp/AntAnyDirection-v0",
    "sb3_lsp/AntCrossMaze-v0",
    "sb3_lsp/PointAnyDirection-v0",
    "sb3_lsp/PointCrossMaze-v0",
]
BODIES = ["Ant", "Point"]
#: Proprioceptive observation size D_s of each body.
D_S = {"Ant": 105, "Point": 2}

# The maze as the paper describes it (REFERENCE section 4), written out independently of
# sb3_lsp.envs.maze: (start (x, y), push direction, axis, position of the wall's inner face).
WALL_APPROACHES = [
    ((0.0, 0.0), (-1.0, 0.0), 0, -1.5),  # back wall at x = -2
    ((1.0, 0.0), (0.0, 1.0), 1, 2.0),  # start corridor, y = 2.5
    ((1.0, 0.0), (0.0, -1.0), 1, -2.0),  # start corridor, y = -2.5
    ((6.0, 5.0), (-1.0, 0.0), 0, 4.0),  # north arm, x = 3.5
    ((6.0, 5.0), (1.0, 0.0), 0, 8.0),  # north arm, x = 8.5
    ((6.0, 5.0), (0.0, 1.0), 1, 7.0),  # north cap, y = 7.5
    ((6.0, -5.0), (-1.0, 0.0), 0, 4.0),  # south arm, x = 3.5
    ((6.0, -5.0), (1.0, 0.0), 0, 8.0),  # south arm, x = 8.5
    ((6.0, -5.0), (0.0, -1.0), 1, -7.0),  # south cap, y = -7.5
    ((11.0, 0.0), (0.0, 1.0), 1, 2.0),  # east arm, y = 2.5
    ((11.0, 0.0), (0.0, -1.0), 1, -2.0),  # east arm, y = -2.5
    ((11.0, 0.0), (1.0, 0.0), 0, 13.0),  # east cap, x = 13.5
]


def make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **kwargs).unwrapped


def place(env: gym.Env, xy: tuple[float, float], velocity: tuple[float, float] = (0.0, 0.0)) -> None:
    """Put the body's root at ``xy`` with planar ``velocity``, the rest of the state as at reset."""
    qpos, qvel = env.init_qpos.copy(), np.zeros_like(env.init_qvel)
    qpos[:2], qvel[:2] = xy, velocity
    env.set_state(qpos, qvel)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env(env_id: str) -> None:
    # No display here: the render modes are Gymnasium's own MujocoEnv code, not ours.
    check_env(make(env_id), skip_render_check=True)
    sb3_check_env(gym.make(env_id))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeding_is_reproducible(env_id: str) -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, size=(50, *gym.make(env_id).action_space.shape))

    def rollout(seed: int) -> tuple[np.ndarray, np.ndarray]:
        env = make(env_id)
        observations = [env.reset(seed=seed)[0]]
        rewards = []
        for action in actions:
            observation, reward, *_ = env.step(action)
            observations.append(observation)
            rewards.append(reward)
        return np.array(observations), np.array(rewards)

    observations, rewards = rollout(3)
    observations_again, rewards_again = rollout(3)
    np.testing.assert_array_equal(observations, observations_again)
    np.testing.assert_array_equal(rewards, rewards_again)
    assert not np.array_equal(rollout(4)[0][0], observations[0])


def test_ant_any_direction_reward_formula() -> None:
    env = make("sb3_lsp/AntAnyDirection-v0")
    env.reset(seed=0)
    action = np.linspace(-0.9, 0.7, 8)
    for velocity in [(2.0, 0.0), (0.0, 2.0), (-1.0, -1.5)]:
        place(env, (0.0, 0.0), velocity)
        xy_before = env.data.body("torso").xpos[:2].copy()
        _, reward, terminated, _, info = env.step(action)
        speed = np.linalg.norm(env.data.body("torso").xpos[:2] - xy_before) / env.dt
        contact_cost = 5e-4 * np.sum(np.clip(env.data.cfrc_ext, -1.0, 1.0) ** 2)
        expected = speed + 0.05 - 0.005 * np.sum(action**2) - contact_cost
        assert not terminated
        assert reward == pytest.approx(expected, rel=1e-6)
        # The speed counts in every direction, unlike Ant-v5's forward (x) velocity reward.
        assert info["reward_speed"] > 1.0


def test_ant_unhealthy_termination() -> None:
    env = make("sb3_lsp/AntAnyDirection-v0")
    env.reset(seed=0)
    # (The floor keeps the torso, a 0.25 m sphere, above the lower bound 0.2.)
    for z, unhealthy in [(0.55, False), (0.95, False), (1.05, True), (1.5, True)]:
        qpos = env.init_qpos.copy()
        qpos[2] = z
        env.set_state(qpos, np.zeros_like(env.init_qvel))
        _, _, terminated, _, info = env.step(np.zeros(8))
        assert terminated == unhealthy
        assert info["reward_survive"] == (0.0 if unhealthy else 0.05)


def test_point_any_direction_reward_formula() -> None:
    env = make("sb3_lsp/PointAnyDirection-v0")
    env.reset(seed=0)
    action = np.array([1.0, 1.0])  # beyond the unit disk: the force is (2, 2) / sqrt(2)
    v0 = np.array([3.0, -4.0])
    place(env, (1.0, 2.0), tuple(v0))
    xy_before = env.data.qpos[:2].copy()
    _, reward, terminated, _, info = env.step(action)
    speed = np.linalg.norm(env.data.qpos[:2] - xy_before) / env.dt
    assert not terminated
    assert reward == pytest.approx(speed + 0.05 - 0.005 * np.sum(action**2), rel=1e-9)
    # The body: m dv/dt = F - b v with m = 1 kg, b = 1 N s/m, integrated exactly over the
    # 0.05 s step; MuJoCo's semi-implicit 0.01 s substeps agree to within 1%.
    force = 2.0 * action / np.linalg.norm(action)
    t = 0.05
    displacement = force * t + (v0 - force) * (1.0 - np.exp(-t))
    assert info["reward_speed"] == pytest.approx(np.linalg.norm(displacement) / t, rel=1e-2)


@pytest.mark.parametrize("action", [(1.0, 0.0), (0.0, -1.0), (1.0, 1.0), (-0.9, 0.9)])
def test_point_top_speed_is_the_same_in_every_direction(action: tuple[float, float]) -> None:
    env = make("sb3_lsp/PointAnyDirection-v0")
    env.reset(seed=0)
    place(env, (0.0, 0.0))
    for _ in range(200):  # 10 s, ten velocity time constants
        _, _, _, _, info = env.step(np.array(action))
    velocity = np.array([info["x_velocity"], info["y_velocity"]])
    assert np.linalg.norm(velocity) == pytest.approx(2.0, rel=1e-3)
    np.testing.assert_allclose(velocity / np.linalg.norm(velocity), np.array(action) / np.linalg.norm(action), atol=1e-5)


def test_point_starts_at_every_heading_in_the_open_and_at_rest_in_the_maze() -> None:
    open_arena, maze = make("sb3_lsp/PointAnyDirection-v0"), make("sb3_lsp/PointCrossMaze-v0")
    velocities = np.array([open_arena.reset(seed=seed)[0] for seed in range(200)])
    speeds, headings = np.linalg.norm(velocities, axis=1), np.arctan2(velocities[:, 1], velocities[:, 0])
    assert speeds.max() < 2.5 and np.mean(speeds) == pytest.approx(1.0, abs=0.15)
    assert np.histogram(headings, bins=4, range=(-np.pi, np.pi))[0].min() > 30
    maze_speeds = [np.linalg.norm(maze.reset(seed=seed)[0][:2]) for seed in range(50)]
    assert max(maze_speeds) < 0.5


@pytest.mark.parametrize("body", BODIES)
def test_maze_observation_starts_with_the_any_direction_observation(body: str) -> None:
    open_arena, maze = make(f"sb3_lsp/{body}AnyDirection-v0"), make(f"sb3_lsp/{body}CrossMaze-v0")
    assert maze.observation_space.shape == (D_S[body] + 2,)
    assert open_arena.observation_space.shape == (D_S[body],)
    open_arena.reset(seed=0)
    maze.reset(seed=0)
    action = np.random.default_rng(1).uniform(-1, 1, size=open_arena.action_space.shape)
    for env in (open_arena, maze):
        place(env, (0.5, -0.3), (0.4, 0.2))
    observation, *_ = open_arena.step(action)
    maze_observation, *_ = maze.step(action)
    # Far from any wall, the two models simulate the same body identically.
    np.testing.assert_allclose(maze_observation[: D_S[body]], observation, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(maze_observation[D_S[body] :], maze.data.qpos[:2])


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("goal", [0, 1, 2])
def test_maze_goal_reward_and_termination(body: str, goal: int) -> None:
    env = make(f"sb3_lsp/{body}CrossMaze-v0", goal=goal)
    env.reset(seed=0)
    target = np.array(GOALS[goal])
    # Toward the junction from the goal is always free space.
    inward = (np.array([6.0, 0.0]) - target) / np.linalg.norm(np.array([6.0, 0.0]) - target)

    place(env, tuple(target + 1.5 * inward))
    _, reward, terminated, _, info = env.step(np.zeros(env.action_space.shape))
    assert (reward, terminated, info["is_success"]) == (1000.0, True, True)
    assert info["distance_to_goal"] == pytest.approx(np.linalg.norm(env.data.qpos[:2] - target))
    assert info["distance_to_goal"] < 2.0

    place(env, tuple(target + 2.6 * inward))
    _, reward, terminated, _, info = env.step(np.zeros(env.action_space.shape))
    assert (reward, terminated, info["is_success"]) == (0.0, False, False)
    assert info["distance_to_goal"] > 2.0


@pytest.mark.parametrize("body", BODIES)
def test_maze_custom_goal_radius_and_dense_reward(body: str) -> None:
    env = make(f"sb3_lsp/{body}CrossMaze-v0", goal=(1.0, 1.0), goal_radius=0.5, reward_type="dense")
    _, info = env.reset(seed=0)
    assert info["distance_to_goal"] == pytest.approx(np.linalg.norm(env.data.qpos[:2] - 1.0))
    _, reward, terminated, _, info = env.step(np.zeros(env.action_space.shape))
    assert reward == pytest.approx(-np.linalg.norm(env.data.qpos[:2] - 1.0))
    assert reward == -info["distance_to_goal"]
    assert not terminated
    place(env, (1.0, 0.6))
    _, reward, terminated, _, info = env.step(np.zeros(env.action_space.shape))
    assert terminated and info["is_success"] and reward > -0.5


@pytest.mark.parametrize("body", BODIES)
def test_maze_goal_argument_is_checked(body: str) -> None:
    with pytest.raises(ValueError, match="goal index"):
        make(f"sb3_lsp/{body}CrossMaze-v0", goal=3)
    with pytest.raises(ValueError, match="reward_type"):
        make(f"sb3_lsp/{body}CrossMaze-v0", reward_type="shaped")


@pytest.mark.parametrize("body", BODIES)
def test_maze_pickles_with_its_goal(body: str) -> None:
    env = pickle.loads(pickle.dumps(make(f"sb3_lsp/{body}CrossMaze-v0", goal=(12.0, 0.5), goal_radius=1.0)))
    np.testing.assert_array_equal(env.task.goal, [12.0, 0.5])
    assert env.task.goal_radius == 1.0
    assert env.observation_space.shape == (D_S[body] + 2,)


@pytest.mark.parametrize(("start", "direction", "axis", "face"), WALL_APPROACHES)
def test_point_cannot_cross_maze_walls(start, direction, axis, face) -> None:
    env = make("sb3_lsp/PointCrossMaze-v0", goal=(100.0, 100.0))
    env.reset(seed=0)
    place(env, start)
    sign = np.sign(face - start[axis])
    closest = np.inf
    for _ in range(300):  # 15 s of full thrust into the wall, at up to 2 m/s
        env.step(np.array(direction))
        gap = sign * (face - env.data.qpos[axis])  # ball centre to wall face, > 0 on the free side
        closest = min(closest, gap)
    # The ball (radius 0.4) reached the wall and stayed on its side of it.
    assert 0.3 < closest < 0.45


@pytest.mark.parametrize(("start", "direction", "axis", "face"), WALL_APPROACHES)
def test_ant_cannot_cross_maze_walls(start, direction, axis, face) -> None:
    env = make("sb3_lsp/AntCrossMaze-v0", goal=(100.0, 100.0))
    env.reset(seed=0)
    place(env, start)
    sign = np.sign(face - start[axis])
    torso = env.model.body("torso").id
    # Shove the torso toward the wall with three times the Ant's weight, for 10 s.
    push = 3.0 * env.model.body_subtreemass[torso] * 9.81
    env.data.xfrc_applied[torso, :2] = push * np.array(direction)
    closest = np.inf
    for _ in range(200):
        env.step(np.zeros(8))
        gaps = sign * (face - env.data.xpos[1:, axis])  # every body frame to the wall face
        closest = min(closest, gaps.min())
    assert 0.0 < closest < 0.6


def test_info_reward_adds_the_weighted_info_terms_and_names_a_missing_one() -> None:
    from rl_zoo3.utils import get_wrapper_class

    from sb3_lsp import InfoReward

    terms = {"reward_speed": 2.0, "reward_ctrl": 1.0}
    raw, shaped = (
        gym.make("sb3_lsp/PointCrossMaze-v0", goal=2),
        InfoReward(gym.make("sb3_lsp/PointCrossMaze-v0", goal=2), terms),
    )
    raw.reset(seed=0)
    shaped.reset(seed=0)
    action = np.array([0.5, -0.25], np.float32)
    _, reward, _, _, info = raw.step(action)
    _, shaped_reward, _, _, _ = shaped.step(action)
    assert info["reward_speed"] > 0
    assert shaped_reward == pytest.approx(reward + 2.0 * info["reward_speed"] + info["reward_ctrl"])
    typo = InfoReward(gym.make("sb3_lsp/PointCrossMaze-v0"), {"reward_fly": 1.0})
    typo.reset(seed=0)
    with pytest.raises(KeyError, match=r"InfoReward terms \['reward_fly'\] are not in the environment's info"):
        typo.step(action)
    # Configs recorded before the move name it benchmarks.run.InfoReward: the same class
    old = get_wrapper_class({"env_wrapper": [{"benchmarks.run.InfoReward": {"terms": terms}}]})(
        gym.make("sb3_lsp/PointCrossMaze-v0")
    )
    assert type(old) is InfoReward
