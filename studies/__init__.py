"""Optuna studies (issue #5): one search space per model family and the leak-proof study runner.

- `studies.space`: the search-space registry (`space_for`, `SPACES`) and the `Overrides` they produce.
- `studies.abmil`, `studies.pooling`, `studies.clam`, `studies.transmil`, `studies.dsmil`, `studies.dtfd`,
  `studies.hmil`: the spaces, one module per model family.
- `studies.objective`: the objective (mean validation metric over folds, test slides never loaded).
- `studies.storage`: Optuna storages (SQLite default, PostgreSQL, journal file) with heartbeats and retries.
- `studies.tune`: ``benchmark tune`` (workers, equal budget, resume); `studies.tracking`: MLflow per trial.
- `studies.best`: the best trial's overrides for ``benchmark run --params-from``.
"""
