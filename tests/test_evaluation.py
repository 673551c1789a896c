"""InfoEvalCallback: SB3's EvalCallback file, plus the final info of every evaluation episode."""

from pathlib import Path

import numpy as np
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_lsp import InfoEvalCallback

MAZE = "sb3_lsp/PointCrossMaze-v0"  # reports is_success and distance_to_goal; episodes of 250 steps


def test_evaluations_npz_holds_sb3s_arrays_the_final_distances_and_a_last_row_at_the_end(tmp_path: Path, capsys) -> None:
    model = SAC("LSPPolicy", MAZE, learning_starts=100, batch_size=32, seed=0)
    callback = InfoEvalCallback(
        make_vec_env(MAZE, seed=7), label="maze run", n_eval_episodes=2, eval_freq=100, log_path=str(tmp_path)
    )
    model.learn(150, callback=callback)  # evaluations at step 100 and, since 150 is not a multiple of 100, at the end

    with np.load(tmp_path / "evaluations.npz") as evaluations:
        assert evaluations["timesteps"].tolist() == [100, 150]
        assert evaluations["results"].shape == evaluations["ep_lengths"].shape == (2, 2)
        assert evaluations["successes"].shape == evaluations["distance_to_goal"].shape == (2, 2)
        assert (evaluations["distance_to_goal"] > 0).all()
        assert 0 <= evaluations["wall_time_s"][0] <= evaluations["wall_time_s"][1]
    assert capsys.readouterr().out.count("maze run: step ") == 2


def test_the_recorded_episodes_are_those_evaluate_policy_sees(tmp_path: Path) -> None:
    model = SAC("LSPPolicy", MAZE, learning_starts=100, batch_size=32, seed=0)
    # eval_freq past the budget: the only evaluation is the one at the end, of the final policy
    callback = InfoEvalCallback(make_vec_env(MAZE, seed=7), n_eval_episodes=2, eval_freq=1000, log_path=str(tmp_path))
    model.learn(120, callback=callback)

    final_infos = []
    returns, lengths = evaluate_policy(
        model,
        make_vec_env(MAZE, seed=7),
        n_eval_episodes=2,
        deterministic=True,
        return_episode_rewards=True,
        callback=lambda local, _: final_infos.append(local["info"]) if local["done"] else None,
    )
    with np.load(tmp_path / "evaluations.npz") as evaluations:
        assert evaluations["timesteps"].tolist() == [120]
        np.testing.assert_allclose(evaluations["results"][0], returns)
        assert evaluations["ep_lengths"][0].tolist() == lengths
        np.testing.assert_allclose(evaluations["distance_to_goal"][0], [info["distance_to_goal"] for info in final_infos])
        assert evaluations["successes"][0].tolist() == [info["is_success"] for info in final_infos]
