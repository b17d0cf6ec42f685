"""Optuna studies (issue #5): one search space per model family and the leak-proof study runner.

- `benchmark.tune.space`: the search-space registry (`space_for`, `SPACES`) and the `Overrides` they produce.
- `studies.abmil`, `studies.pooling`, `studies.clam`, `studies.transmil`, `studies.dsmil`, `studies.dtfd`,
  `studies.hmil`: the spaces, one module per model family.
- `benchmark.tune.objective`: the objective (mean validation metric over folds, test slides never loaded).
- `benchmark.tune.storage`: Optuna storages (SQLite default, PostgreSQL, journal file) with heartbeats and retries.
- `benchmark.tune.engine`: ``benchmark tune`` (workers, equal budget, resume); `benchmark.tune.trial_runs`: MLflow per trial.
- `benchmark.tune.best`: the best trial's overrides for ``benchmark run --params-from``.
"""
