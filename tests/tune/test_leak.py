"""No test-part slide ever reaches a model during `benchmark tune`.

The model's forward is instrumented: every bag's first instance identifies its slide (a lookup built from the
full dataset), so the test records every slide each model instance sees. Each tuning fit builds one fresh
model; with 3 folds and no pruning, model j belongs to fold j mod 3. None of the slides a fold's model sees
is in that fold's test part, and all its validation slides are seen (the instrumentation works).
"""

from __future__ import annotations

import numpy as np

import benchmark.run.encoders
from benchmark.cli.main import main
from benchmark.core.config import DataConfig
from benchmark.cv.files import fold_indices, load_splits
from benchmark.data import load_dataset
from tests.tune.conftest import tune_args


def test_tune_never_passes_a_test_slide_to_the_model(tmp_path, monkeypatch):
    full = load_dataset(DataConfig(name="panda-sim", scale=0.2, cache_dir=str(tmp_path / "cache")))
    slide_of = {
        np.asarray(full.bag(i)[0], dtype=np.float32).tobytes(): full.slide_ids[i] for i in range(len(full))
    }
    assert len(slide_of) == len(full)  # first instances identify the slides
    seen: list[set[str]] = []
    real_build = benchmark.run.encoders.build_model

    def build_model(*args, **kwargs):
        model = real_build(*args, **kwargs)
        slides: set[str] = set()
        seen.append(slides)
        forward = model.forward

        def recording_forward(x, mask, targets=None):
            first = x[:, 0].detach().float().cpu().numpy()  # real instances come first in every padded bag
            slides.update(slide_of[row.tobytes()] for row in first)
            return forward(x, mask, targets)

        model.forward = recording_forward
        return model

    monkeypatch.setattr(benchmark.run.encoders, "build_model", build_model)
    args = tune_args(tmp_path, "--model", "abmil", "--trials", "2", "--pruner", "none")
    args[args.index("--folds") + 1] = "3"
    assert main(args) == 0

    splits = load_splits(tmp_path / "splits" / "panda-sim" / "kfold-k3-seed0.csv")
    table = full.table()
    assert len(seen) == 2 * 3  # two trials × three folds, one fresh model each
    for j, slides in enumerate(seen):
        parts = fold_indices(splits, table, j % 3)
        ids = {role: {full.slide_ids[i] for i in idx} for role, idx in parts.items()}
        assert not slides & ids["test"], f"fold {j % 3}: test slides reached the model"
        assert slides <= ids["train"] | ids["val"]
        assert ids["val"] <= slides and len(slides & ids["train"]) > 0  # the recording covers what was used
