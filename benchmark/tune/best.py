"""The best trial of a study as run overrides, for ``benchmark run --params-from STUDY`` (or ``--best``).

Every trial stores the exact override mapping it was resolved from (user attr ``overrides``), so a run
replays the best trial's configuration verbatim instead of re-deriving it from Optuna's parameter values.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from benchmark.core.errors import ConfigError
from benchmark.core.overrides import Overrides
from benchmark.tune.storage import DEFAULT_STORAGE, open_storage

__all__ = ["BestParams", "best_params"]


@dataclass(frozen=True)
class BestParams:
    """Where a run's parameters came from and what they are.

    Attributes:
        study, storage: the study and its storage URL.
        trial: the best trial's number; value: its objective value.
        model: the model the study tuned.
        overrides: the trial's overrides (train/model/loss strings, as ``--set`` takes them).
        params: Optuna's parameter values of the trial (for display and checks).
    """

    study: str
    storage: str
    trial: int
    value: float
    model: str
    overrides: Overrides
    params: dict[str, object]

    def tags(self) -> dict[str, str]:
        """Tags recorded on the run's parent: which study and trial its parameters came from."""
        return {
            "benchmark.params_from.study": self.study,
            "benchmark.params_from.trial": str(self.trial),
            "benchmark.params_from.value": repr(self.value),
        }


def best_params(study_name: str, storage: str | None = None) -> BestParams:
    """Load ``study_name`` from ``storage`` (default ``sqlite:///optuna.db``) and return its best trial.

    Raises:
        ConfigError: no such study (the message lists the studies in the storage) or no completed trial.
    """
    url = storage or DEFAULT_STORAGE
    store = open_storage(url, heartbeat_interval=None)
    try:
        study = optuna.load_study(study_name=study_name, storage=store)
    except KeyError:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False))
        raise ConfigError(
            f"--params-from {study_name}: no such study in {url}; studies there: "
            f"{', '.join(names) or 'none'} (run `benchmark tune` first, or pass --storage)."
        ) from None
    try:
        best = study.best_trial
    except ValueError:
        raise ConfigError(
            f"--params-from {study_name}: the study has no completed trial yet; "
            "run `benchmark tune` for it first."
        ) from None
    if "overrides" not in best.user_attrs:
        raise ConfigError(
            f"--params-from {study_name}: trial {best.number} has no recorded overrides; "
            "it was not created by `benchmark tune`."
        )
    model = str(study.user_attrs.get("budget", {}).get("model", ""))
    return BestParams(
        study_name,
        url,
        best.number,
        float(best.value),
        model,
        Overrides.from_dict(best.user_attrs["overrides"]),
        dict(best.params),
    )
