"""
Optuna storages for tuning: a journal file (one machine or a shared file system) or a database
(PostgreSQL: N workers on M machines), with what keeps a study usable when a worker dies.

- A database gets Optuna's heartbeat: a trial without one for twice the interval ends FAIL and is
  run again once (``RetryHeartbeatStaleTrialCallback``); workers opening a new PostgreSQL database
  together create its tables in turn (an advisory lock, optuna#1092).
- A journal has no heartbeat: a starting or waiting worker ends FAIL the RUNNING trials of dead
  workers on its own host and queues each again once (:func:`fail_dead_local_trials`).
"""

import contextlib
import os
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

HEARTBEAT_INTERVAL_VARIABLE = "SB3_LSP_HEARTBEAT_INTERVAL"
DEFAULT_HEARTBEAT_INTERVAL = 60
#: PostgreSQL advisory lock (any fixed 64-bit number) that workers opening one database take in turn.
SCHEMA_LOCK_KEY = 0x5B3_15B


def make_storage(storage: str | None) -> optuna.storages.BaseStorage | None:
    """
    Open ``--storage`` as rl_zoo3 does, adding Optuna's heartbeat to database storages.

    :param storage: ``None`` (in memory), a path ending in ``.log`` (a journal file, one machine
        or a shared file system) or a database URL (e.g. ``postgresql://user:password@host/db``).
        On a database, every worker records a heartbeat every ``$SB3_LSP_HEARTBEAT_INTERVAL``
        seconds (default 60); a trial without one for twice that long ends FAIL and is run again once.
    :return: The storage for :func:`optuna.create_study`.
    """
    if storage is None:
        return None
    if storage.endswith(".log"):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(storage))
    interval = os.environ.get(HEARTBEAT_INTERVAL_VARIABLE, str(DEFAULT_HEARTBEAT_INTERVAL))
    if not interval.isdigit() or int(interval) < 1:
        raise ValueError(f"{HEARTBEAT_INTERVAL_VARIABLE}={interval!r}: set it to a whole number of seconds >= 1.")
    try:
        return _open_database(storage, int(interval))
    except sqlalchemy.exc.IntegrityError:
        # Outside PostgreSQL (see _schema_lock) workers started together on a new database race
        # to create Optuna's tables: the loser finds them there on a second try
        time.sleep(1.0)
        return _open_database(storage, int(interval))


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """
    On PostgreSQL, hold an advisory lock while Optuna creates or checks its tables.

    Workers started together on a new database otherwise all run ``CREATE TYPE``/``CREATE TABLE``
    at once (optuna#1092): a dozen workers lost that race several times in a hundred, with an
    ``IntegrityError`` or a ``ProgrammingError`` (``DuplicateTable``) at any point of the schema.
    """
    engine = sqlalchemy.create_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            yield
            return
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


def _open_database(url: str, heartbeat_interval: int) -> RDBStorage:
    try:
        with _schema_lock(url), warnings.catch_warnings():
            # The heartbeat has been "experimental" since Optuna 2.9; it is what makes workers replaceable.
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
    except ImportError as error:  # Optuna's message names no package
        raise ImportError(
            f"--storage {url} needs a database driver that is not installed ({error}); "
            "for PostgreSQL: pip install 'sb3-lsp[postgres]'."
        ) from error


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def fail_dead_local_trials(study: optuna.Study) -> list[int]:
    """
    On a journal storage (no heartbeat), end FAIL the RUNNING trials whose ``worker`` (host:pid)
    ran on this host and no longer exists, and queue each again once with the same parameters,
    as RetryHeartbeatStaleTrialCallback does on a database. Trials of other hosts are left alone:
    from here nobody can tell whether their worker lives.

    :return: The numbers of the trials ended FAIL.
    """
    host, failed = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or _process_exists(int(pid)):
            continue
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", f"worker {host}:{pid} died")
        if not study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            continue  # another worker did it first
        failed.append(trial.number)
        if "retry_of" not in trial.user_attrs:  # once, as on a database
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    return failed


def live_running_trials(study: optuna.Study, storage: optuna.storages.BaseStorage | None) -> bool:
    """Whether another worker's trial may still come back (FAIL and retried) for this worker to run."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if isinstance(storage, RDBStorage):
        return bool(running)  # the heartbeat ends a dead worker's trial
    host = socket.gethostname()
    return any(str(trial.user_attrs.get("worker", "")).startswith(f"{host}:") for trial in running)
