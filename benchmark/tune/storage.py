"""Optuna storages for ``benchmark tune``: SQLite by default, PostgreSQL for many workers, or a journal file.

- ``sqlite:///optuna.db`` (default, in the working directory): an `optuna.storages.RDBStorage` file. One
  process at a time: SQLite serialises writers with a file lock, which breaks down under several
  concurrent workers ("database is locked"), so ``--workers`` > 1 refuses it.
- ``postgresql://user:pw@host:port/db`` (or ``postgresql+psycopg://``/``+psycopg2://``, MySQL likewise): an
  RDB server; many processes on many machines fill one study. Needs the driver of the ``postgres`` extra
  (``pip install 'hmil-bench[postgres]'``, psycopg 3); a bare ``postgresql://`` uses whichever of psycopg 3
  or psycopg2 is installed.
- ``journal:PATH``: `optuna.storages.JournalStorage` on a `JournalFileBackend` (append-only log with
  file locks): several processes on one machine, no server. File locks are unreliable over NFS, and
  journal storages have no heartbeats.

RDB storages get heartbeats: a worker's running trial records a heartbeat every ``heartbeat_interval``
seconds; a trial whose worker died (no heartbeat for ``grace_period``) is marked FAIL by the next worker
that starts a trial and re-queued once more (up to ``max_retry`` times) with the same parameters by
Optuna's retry callback — ``RetryHeartbeatStaleTrialCallback`` passed as ``heartbeat_stale_trial_callback``
(Optuna ≥ 4.9), or ``RetryFailedTrialCallback`` / ``failed_trial_callback`` on older Optuna.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, RDBStorage

from benchmark.core.errors import ConfigError

__all__ = [
    "DEFAULT_STORAGE",
    "check_storage_url",
    "quiet_experimental",
    "open_storage",
    "retried_trial_number",
    "retry_callback_class",
    "storage_kind",
    "supports_many_workers",
]

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///optuna.db"

_DRIVERS = (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2"))


_STORAGE_FIX = "use sqlite:///optuna.db, postgresql://user:password@host:5432/db or journal:optuna.log"


def storage_kind(url: str) -> str:
    """ "sqlite", "server" (PostgreSQL/MySQL/other RDB) or "journal"; unknown schemes raise."""
    if url.startswith("journal:"):
        return "journal"
    if url.startswith("sqlite:"):
        return "sqlite"
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme.split("+")[0] in ("postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql"):
        return "server"
    what = f"unknown scheme {scheme!r}" if scheme else "no scheme://"
    raise ConfigError(f"--storage {_redact(url)} is not a storage URL ({what}); {_STORAGE_FIX}.")


def check_storage_url(url: str) -> str:
    """``url`` when `open_storage` can open a storage of its form (checked without opening it: the scheme, a
    SQLite or journal file's directory, a PostgreSQL driver), else a `ConfigError` naming ``--storage``, what
    is wrong and the fix. Cheap: the CLI runs it before loading data. Returns the URL, driver filled in."""
    kind = storage_kind(url)
    if kind == "journal":
        path = Path(url.removeprefix("journal:")).expanduser()
        if not path.name:
            raise ConfigError(f"--storage {url}: no file after journal:; {_STORAGE_FIX}.")
        if not path.parent.resolve().is_dir():
            raise ConfigError(f"--storage {url}: directory {path.parent} does not exist; create it first.")
    elif kind == "sqlite":
        file = url.removeprefix("sqlite:///")
        if not url.startswith("sqlite:///") or not file:
            raise ConfigError(f"--storage {url}: a SQLite URL is sqlite:/// then a file; {_STORAGE_FIX}.")
        if file != ":memory:" and not Path(file).expanduser().resolve().parent.is_dir():
            raise ConfigError(
                f"--storage {url}: directory {Path(file).parent} does not exist; create it first."
            )
    else:  # a server; postgresql:///db (no host) is the local socket
        url = _normalise_postgres(url)
    return url


def supports_many_workers(url: str) -> bool:
    """Whether several processes may write this storage at once (server RDBs and journal files)."""
    return storage_kind(url) in ("server", "journal")


def _normalise_postgres(url: str) -> str:
    """Pick an installed driver for a bare ``postgresql://`` URL; check an explicit one is installed."""
    scheme, rest = url.split("://", 1)
    base, _, driver = scheme.partition("+")
    if base == "postgres":
        base = "postgresql"
    if base != "postgresql":
        return url
    if driver:
        module = {"psycopg": "psycopg", "psycopg2": "psycopg2"}.get(driver, driver)
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"--storage {base}+{driver}://…: the {module} driver is not installed; "
                "pip install 'hmil-bench[postgres]' (psycopg 3) or use postgresql+psycopg://."
            )
        return f"{base}+{driver}://{rest}"
    for module, prefix in _DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return f"{prefix}://{rest}"
    raise ConfigError(
        "--storage postgresql://…: no PostgreSQL driver is installed; "
        "pip install 'hmil-bench[postgres]' (psycopg 3)."
    )


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning (heartbeats, retries, the Wilcoxon pruner are all "experimental")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def retry_callback_class() -> type:
    """``RetryHeartbeatStaleTrialCallback`` (Optuna ≥ 4.9), else the older ``RetryFailedTrialCallback``."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    return cls if cls is not None else optuna.storages.RetryFailedTrialCallback


def retried_trial_number(trial: optuna.trial.FrozenTrial) -> int | None:
    """Number of the trial this one retries (the original one across repeated retries), or None."""
    with quiet_experimental():
        return retry_callback_class().retried_trial_number(trial)


def _stale_callback_kwarg() -> str:
    params = inspect.signature(RDBStorage.__init__).parameters
    return (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in params
        else "failed_trial_callback"
    )


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> BaseStorage:
    """Open (creating tables or the file if needed) the storage at ``url``.

    Args:
        url: ``sqlite:///…``, a server URL (``postgresql://…``) or ``journal:PATH``.
        heartbeat_interval: seconds between heartbeats of a running trial (RDB storages); None = off.
        grace_period: seconds without a heartbeat after which a trial is stale (None = 2 × interval).
        max_retry: times a stale trial is re-queued with the same parameters (None = unlimited).

    Raises:
        ConfigError: a malformed URL, a missing driver or directory, or a server that cannot be reached.
    """
    kind = storage_kind(url)
    url = check_storage_url(url)
    if kind == "journal":
        journal = optuna.storages.journal
        backend = (
            getattr(journal, "JournalFileBackend", None) or optuna.storages.JournalFileStorage
        )  # Optuna < 4
        return journal.JournalStorage(backend(str(Path(url.removeprefix("journal:")).expanduser())))
    kwargs: dict[str, object] = {}
    if heartbeat_interval:
        with quiet_experimental():
            callback = retry_callback_class()(max_retry=max_retry)
        kwargs = {
            "heartbeat_interval": int(heartbeat_interval),
            "grace_period": grace_period,
            _stale_callback_kwarg(): callback,
        }
    engine_kwargs = {"pool_pre_ping": True} if kind == "server" else None
    try:
        with quiet_experimental():
            return RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises driver-specific errors; report one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"--storage {_redact(url)}: cannot open the storage ({first}); check the URL, that the "
            "server is running and the credentials."
        ) from exc


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
