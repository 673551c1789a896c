"""RL Zoo and Optuna: the README's rl_zoo3 commands, run as subprocesses the way users type them."""

import contextlib
import glob
import multiprocessing
import multiprocessing.queues
import multiprocessing.synchronize
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from sb3_contrib import TQC
from stable_baselines3 import SAC

from sb3_lsp import LSPPolicy, TQCLSPPolicy
from sb3_lsp.zoo import FLOW_PARAMS, flow_kwargs, make_storage

ROOT = Path(__file__).resolve().parents[1]
# Few steps, and learning only over the last ones: a trial or run is seconds, not minutes
STEPS = ["-n", "300", "--num-threads", "1"]
TUNING = ["--n-evaluations", "1", "--eval-episodes", "1", "--sampler", "random", "--pruner", "none"]
# Headless: MuJoCo renders offscreen through EGL, matplotlib draws without a display
ENV = {**os.environ, "MUJOCO_GL": "egl", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}


def run(*args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env or ENV, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=cwd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def small_config(tmp_path: Path, algo: str, **changes: object) -> Path:
    """The package's Pendulum-v1 entry, learning from step 290 on, with ``changes`` applied."""
    entry = yaml.safe_load((ROOT / "hyperparams" / f"{algo}_lsp.yml").read_text())["Pendulum-v1"]
    entry.update({"learning_starts": 290, "batch_size": 64, **changes})
    path = tmp_path / f"{algo}_small.yml"
    path.write_text(yaml.safe_dump({"Pendulum-v1": entry}))
    return path


def load_journal(path: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))))


@pytest.fixture(scope="module")
def zoo_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train SAC and TQC on Pendulum-v1 and SAC on Hopper-v5 with the package's files, as the README says."""
    folder = tmp_path_factory.mktemp("zoo")
    for algo, env_id in (("sac", "Pendulum-v1"), ("tqc", "Pendulum-v1"), ("sac", "Hopper-v5")):
        conf = ROOT / "hyperparams" / f"{algo}_lsp.yml"
        run(
            "rl_zoo3.train", "--algo", algo, "--env", env_id, "-conf", str(conf), "--gym-packages", "sb3_lsp",
            *STEPS, "-params", "learning_starts:250", "--eval-freq", "150", "--eval-episodes", "2", "-f", "logs",
            cwd=folder,
        )  # fmt: skip
    return folder


@pytest.mark.parametrize(("algo", "algo_class", "policy_class"), [("sac", SAC, LSPPolicy), ("tqc", TQC, TQCLSPPolicy)])
def test_zoo_train_saves_a_latent_space_policy(zoo_runs: Path, algo: str, algo_class: type, policy_class: type) -> None:
    model = algo_class.load(zoo_runs / "logs" / algo / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert type(model.policy) is policy_class
    # The YAML's flow for |A| = 1, the paper's 128x128 critic, and the YAML's batch size
    assert (model.actor.n_coupling_layers, model.actor.coupling_net_arch, model.actor.embedding_dim) == (2, [1], 2)
    assert model.policy.critic_kwargs["net_arch"] == [128, 128]
    assert model.batch_size == 128


def test_enjoy_record_video_and_plots(zoo_runs: Path) -> None:
    enjoy = run(
        "rl_zoo3.enjoy", "--algo", "sac", "--env", "Pendulum-v1", "-f", "logs", "--gym-packages", "sb3_lsp",
        "--no-render", "-n", "250", cwd=zoo_runs,
    )  # fmt: skip
    assert "Atari Episode Score" not in enjoy.stdout and "Episode Reward:" in enjoy.stdout

    run("rl_zoo3.record_video", "--algo", "sac", "--env", "Hopper-v5", "-f", "logs", "-n", "60", cwd=zoo_runs)
    videos = list((zoo_runs / "logs" / "sac" / "Hopper-v5_1" / "videos").glob("*.mp4"))
    assert videos and videos[0].stat().st_size > 1000

    plot = run("rl_zoo3.plots.plot_train", "--algo", "sac", "--env", "Pendulum-v1", "-f", "logs", "-w", "1", cwd=zoo_runs)
    assert "No data available" not in plot.stdout
    run(
        "rl_zoo3.plots.all_plots", "--algos", "sac", "tqc", "--env", "Pendulum-v1", "-f", "logs", "-o", "all",
        "--no-display", cwd=zoo_runs,
    )  # fmt: skip
    with open(zoo_runs / "all.pkl", "rb") as file:
        results = pickle.load(file)
    assert set(results["Pendulum-v1"]) == {"SAC-logs", "TQC-logs"}
    assert list(results["Pendulum-v1"]["SAC-logs"]["timesteps"]) == [150, 300]


def test_two_workers_share_one_journal_study_and_trial_id_round_trips(tmp_path: Path) -> None:
    # A non-default flow argument that the sampler does not touch: the trials must keep it
    conf = small_config(tmp_path, "sac", policy_kwargs={"net_arch": [64, 64], "log_scale_bound": 3.0})
    tune = (
        "sb3_lsp.zoo", "train", "--algo", "sac", "--env", "Pendulum-v1", "-conf", str(conf), *STEPS, *TUNING,
        "--optimize", "--storage", "study.log", "--study-name", "journal", "--max-total-trials", "4",
        "--optimization-log-path", "trials", "--no-optim-plots",
    )  # fmt: skip
    workers = [start(*tune, "--seed", str(seed), cwd=tmp_path) for seed in (1, 2)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    study = load_journal(tmp_path / "study.log", "journal")
    counted = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert sorted(t.number for t in counted) == [0, 1, 2, 3]
    # Anything else can only be a trial that both workers started as the 4th: ended before any work
    assert all(t.user_attrs["fail_reason"].startswith("surplus") for t in study.trials if t not in counted)
    assert len({t.user_attrs["worker"] for t in counted}) == 2

    for trial in counted:
        model = SAC.load(tmp_path / "trials" / f"trial_{trial.number}" / "best_model.zip")
        assert model.actor.log_scale_bound == 3.0
        expected = flow_kwargs(trial.params)
        actor = model.actor
        assert (actor.n_coupling_layers, actor.coupling_net_arch, actor.embedding_net_arch, actor.embedding_dim) == (
            expected["n_coupling_layers"],
            expected["coupling_net_arch"],
            expected["embedding_net_arch"],
            expected["embedding_dim"],
        )

    # --trial-id 0 (which rl_zoo3 alone would ignore) rebuilds trial 0's agent, YAML arguments included
    trial = study.trials[0]
    run(
        "sb3_lsp.zoo", "train", "--algo", "sac", "--env", "Pendulum-v1", "-conf", str(conf), *STEPS, "--eval-freq", "-1",
        "--storage", "study.log", "--study-name", "journal", "--trial-id", "0", "-f", "replay", cwd=tmp_path,
    )  # fmt: skip
    model = SAC.load(tmp_path / "replay" / "sac" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert model.actor.n_coupling_layers == trial.params["n_coupling_layers"]
    assert model.actor.coupling_net_arch == [trial.params["coupling_hidden"]]
    assert model.actor.embedding_dim == trial.params["embedding_dim"]
    assert model.actor.log_scale_bound == 3.0
    assert model.batch_size == 2 ** trial.params["batch_size_pow"]
    assert model.lr_schedule(1.0) == pytest.approx(trial.params["learning_rate"])


def test_a_trial_that_raises_ends_fail_with_its_traceback(tmp_path: Path) -> None:
    # A real user mistake that raises inside learn(), where rl_zoo3 alone would call it a prune:
    # this callback asserts that it runs under an EvalCallback
    callback = {"stable_baselines3.common.callbacks.StopTrainingOnNoModelImprovement": {"max_no_improvement_evals": 2}}
    conf = small_config(tmp_path, "sac", callback=[callback])
    result = run(
        "sb3_lsp.zoo", "train", "--algo", "sac", "--env", "Pendulum-v1", "-conf", str(conf), *STEPS, *TUNING,
        "--optimize", "--storage", "study.log", "--study-name", "bug", "--n-trials", "10", cwd=tmp_path, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Stopped after 3 failed trials in a row" in output
    assert "Traceback (most recent call last)" in output and "must be used with an ``EvalCallback``" in output

    trials = load_journal(tmp_path / "study.log", "bug").trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert all("StopTrainingOnNoModelImprovement" in t.user_attrs["traceback"] for t in trials)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgresql() -> Iterator[str]:
    """A private PostgreSQL server in a temporary folder; yields its URL."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or [shutil.which("pg_ctl")]
    if binaries[-1] is None:
        pytest.skip("no PostgreSQL server binary (pg_ctl, initdb) on this machine: apt-get install postgresql")
    bin_dir = Path(binaries[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="sb3_lsp_pg_"))
    # PostgreSQL refuses to run as root: run it as nobody there
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "nobody")
    port = _free_port()
    data, log = folder / "data", folder / "server.log"
    initdb = [*as_user, bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust"]
    subprocess.run(initdb, check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start"], check=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _open_storage(url: str, ready: multiprocessing.synchronize.Barrier, errors: multiprocessing.queues.Queue) -> None:
    ready.wait()
    try:
        make_storage(url)
        errors.put("")
    except Exception as error:
        errors.put(f"{type(error).__name__}: {error}")


def test_workers_started_together_on_a_new_database_all_open_it(postgresql: str) -> None:
    # The first workers on an empty database all create Optuna's tables: a dozen started together
    # lost that race (IntegrityError, DuplicateTable) in most runs of these 8 rounds before make_storage took turns
    server = sqlalchemy.create_engine(postgresql, isolation_level="AUTOCOMMIT")
    fork = multiprocessing.get_context("fork")
    n_workers = 12
    for round_ in range(8):
        with server.connect() as connection:
            connection.execute(sqlalchemy.text(f"CREATE DATABASE new_{round_}"))
        url = postgresql.rsplit("/", 1)[0] + f"/new_{round_}"
        ready, errors = fork.Barrier(n_workers), fork.Queue()
        workers = [fork.Process(target=_open_storage, args=(url, ready, errors)) for _ in range(n_workers)]
        for worker in workers:
            worker.start()
        outcomes = [errors.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join()
        assert [outcome for outcome in outcomes if outcome] == [], f"round {round_}"
        assert optuna.get_all_study_names(make_storage(url)) == []
    server.dispose()


def _tune_on(url: str, study_name: str, conf: Path, max_total_trials: int) -> tuple[str, ...]:
    return (
        "sb3_lsp.zoo", "train", "--algo", "sac", "--env", "Pendulum-v1", "-conf", str(conf), *STEPS, *TUNING,
        "--optimize", "--storage", url, "--study-name", study_name, "--max-total-trials", str(max_total_trials),
        "--no-optim-plots",
    )  # fmt: skip


def test_two_workers_share_one_postgresql_study(postgresql: str, tmp_path: Path) -> None:
    tune = _tune_on(postgresql, "postgres", small_config(tmp_path, "sac"), max_total_trials=4)
    workers = [start(*tune, "--seed", str(seed), cwd=tmp_path) for seed in (1, 2)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        if worker.returncode != 0:  # in full under "Captured stdout call": pytest cuts the assertion message
            print(f"worker exited {worker.returncode}:\n{output}")
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    study = optuna.load_study(study_name="postgres", storage=postgresql)
    counted = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert sorted(t.number for t in counted) == [0, 1, 2, 3]
    assert all(t.user_attrs["fail_reason"].startswith("surplus") for t in study.trials if t not in counted)
    assert len({t.user_attrs["worker"] for t in counted}) == 2
    assert all({"n_coupling_layers", "coupling_hidden", "embedding_size", "embedding_dim"} <= set(t.params) for t in counted)
    # Each worker wrote its own report, though both ended at about the same time in one log folder
    reports = sorted((tmp_path / "logs" / "sac").glob("report_Pendulum-v1_*.csv"))
    assert {report.stem.rsplit("_", 1)[1] for report in reports} == {str(worker.pid) for worker in workers}


def wait_for_a_learning_trial(load: Callable[[], optuna.Study], pid: int) -> list[FrozenTrial]:
    """Poll the study until worker ``pid`` runs a trial sampled to the end (so learning), within 120 s."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(KeyError, FileNotFoundError):  # the study does not exist yet
            running = load().get_trials(states=(TrialState.RUNNING,))
            # The flow's parameters are sampled last: with all of them the trial is learning
            sampled = [t for t in running if all(name in t.params for name in FLOW_PARAMS)]
            killed = [t for t in sampled if t.user_attrs.get("worker", "").endswith(f":{pid}")]
            if killed:
                return killed
        time.sleep(0.2)
    pytest.fail("the worker to kill never ran a trial")


def test_a_killed_worker_leaves_the_study_usable(postgresql: str, tmp_path: Path) -> None:
    # Long enough trials to be killed in the middle of one
    tune = _tune_on(postgresql, "killed", small_config(tmp_path, "sac", learning_starts=100), max_total_trials=3)
    env = {**ENV, "SB3_LSP_HEARTBEAT_INTERVAL": "1"}
    victim, survivor = (start(*tune, "--seed", str(seed), cwd=tmp_path, env=env) for seed in (1, 2))
    try:
        killed = wait_for_a_learning_trial(lambda: optuna.load_study(study_name="killed", storage=postgresql), victim.pid)
        victim.send_signal(signal.SIGKILL)
        output = survivor.communicate(timeout=300)[0]
    finally:
        victim.kill()
        survivor.kill()
    assert survivor.returncode == 0, output

    trials = optuna.load_study(study_name="killed", storage=postgresql).trials
    by_number = {t.number: t for t in trials}
    assert by_number[killed[0].number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed[0].number]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert retries[0].params == killed[0].params
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 3
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_a_killed_worker_on_a_journal_is_rerun_by_the_next_worker_on_its_host(tmp_path: Path) -> None:
    # A journal has no heartbeat: the next worker on the same host sees the dead pid instead
    conf = small_config(tmp_path, "sac", learning_starts=100)
    tune = (
        "sb3_lsp.zoo", "train", "--algo", "sac", "--env", "Pendulum-v1", "-conf", str(conf), *STEPS, *TUNING,
        "--optimize", "--storage", "study.log", "--study-name", "killed", "--max-total-trials", "2", "--no-optim-plots",
    )  # fmt: skip
    victim = start(*tune, "--seed", "1", cwd=tmp_path)
    try:
        killed = wait_for_a_learning_trial(lambda: load_journal(tmp_path / "study.log", "killed"), victim.pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    finally:
        victim.kill()
    fresh = start(*tune, "--seed", "2", cwd=tmp_path)
    output = fresh.communicate(timeout=300)[0]
    assert fresh.returncode == 0, output

    trials = load_journal(tmp_path / "study.log", "killed").trials
    by_number = {t.number: t for t in trials}
    assert by_number[killed[0].number].state == TrialState.FAIL
    assert by_number[killed[0].number].user_attrs["fail_reason"] == f"worker {killed[0].user_attrs['worker']} died"
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed[0].number]
    assert [t.state for t in retries] == [TrialState.COMPLETE] and retries[0].params == killed[0].params
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 2
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@pytest.mark.parametrize(
    ("algo", "changes", "message"),
    [
        ("sac", {"policy_kwargs": "dict(n_couplin_layers=3)"}, "policy_kwargs key: 'n_couplin_layers'"),
        ("tqc", {"policy_kwargs": "dict(n_quantiles=5, coupling_net_arc=[4])"}, "did you mean 'coupling_net_arch'"),
        (
            "sac",
            {"env_wrapper": [{"sb3_lsp.LatentActionWrapper": {"lower": "nowhere", "prior_coeff": 0.1}}]},
            "sb3_lsp.LatentActionWrapper argument in env_wrapper: 'prior_coeff'; did you mean 'prior_coef'",
        ),
        ("sac", {"policy_kwargs": "dict(n_coupling_layers=-1)"}, "n_coupling_layers must be a positive integer"),
        (
            "sac",
            {"env_wrapper": [{"sb3_lsp.LatentActionWrapper": {"lower": "nowhere", "prior_coef": "1e-1"}}]},
            "prior_coef must be a finite number >= 0, got the string '1e-1'",
        ),
    ],
)
def test_zoo_settings_are_checked_before_the_run_folder_is_written(
    tmp_path: Path, algo: str, changes: dict, message: str
) -> None:
    conf = small_config(tmp_path, algo, **changes)
    result = run(
        "sb3_lsp.zoo", "train", "--algo", algo, "--env", "Pendulum-v1", "-conf", str(conf), *STEPS, "-f", "logs",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
    assert not list((tmp_path / "logs").glob(f"{algo}/Pendulum-v1_*"))
