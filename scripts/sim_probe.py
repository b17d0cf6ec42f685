"""Train registered models through the harness on panda-sim regenerated with other generator parameters.

Used to study how a method depends on the simulator (docs/hmil.md, "HMIL on panda-sim"): the slides,
labels and folds stay those of the default panda-sim (checked), only the features change. Reports the
test fine macro AUC per fold and mean ± std (sample std over folds).

Examples::

    .venv/bin/python scripts/sim_probe.py --models hmil,abmil                         # panda-sim (v2 features)
    .venv/bin/python scripts/sim_probe.py --models hmil,abmil --embed signal_gain=0.5  # weaker tissue pattern
    .venv/bin/python scripts/sim_probe.py --dataset panda-sim-iso --sim noise_sd=0.3   # v1, less isotropic noise
    .venv/bin/python scripts/sim_probe.py --models "" --variance                        # feature statistics only

``--sim`` overrides `PandaSimParams` (its ``noise_sd`` and ``within_sd`` shape the v1 features of
``panda-sim-iso``); ``--embed`` overrides the v2 `EmbeddingModel` of ``panda-sim``.

``--variance`` prints, for the instance features, the share of variance explained by the tissue pattern
(between-pattern / total sum of squares) and the participation-ratio effective rank (Σλ)²/Σλ² of the
covariance; the same for the 8×8 digit images behind ``digits-panda`` (pattern = digit 3, 4, 5 or other).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile

import numpy as np
import torch

from benchmark.core.config import CVConfig, DataConfig
from benchmark.core.overrides import Overrides
from benchmark.cv.files import fold_indices, get_or_create_splits
from benchmark.data import load_dataset
from benchmark.data.digits.datasets import load_digits_8x8
from benchmark.data.sim.datasets import PANDA_EMBEDDING, PandaSimParams, generate_simulated
from benchmark.data.stats import between_group_share, effective_rank
from benchmark.run.resolve import resolve_run_config
from benchmark.run.setup import fold_seed
from benchmark.run.train import train_fold


def _replace(defaults, pairs: list[str], option: str):
    """A copy of dataclass ``defaults`` with FIELD=VALUE strings cast to the fields' types."""
    changes: dict[str, object] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not hasattr(defaults, key):
            raise SystemExit(f"{option} {pair}: {type(defaults).__name__} has no field {key!r}")
        current = getattr(defaults, key)
        changes[key] = (
            tuple(type(current[0])(v) for v in value.split(","))
            if isinstance(current, tuple)
            else type(current)(value)
        )
    return dataclasses.replace(defaults, **changes)


def variance_stats(features: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Between-group variance share and participation-ratio rank of (T, D) instance features."""
    x = np.asarray(features, dtype=np.float64)
    eig = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    return {
        "pattern_variance_share": round(between_group_share(x, groups), 4),
        "effective_rank": round(effective_rank(eig), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="hmil,abmil", help="comma-separated registered models")
    parser.add_argument("--dataset", choices=("panda-sim", "panda-sim-iso"), default="panda-sim")
    parser.add_argument(
        "--sim", nargs="*", default=[], metavar="FIELD=VALUE", help="PandaSimParams overrides"
    )
    parser.add_argument(
        "--embed",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="EmbeddingModel overrides (v2 panda-sim only)",
    )
    parser.add_argument("--folds", default="0,1,2,3,4", help="fold columns of the default 5-fold split")
    parser.add_argument("--variance", action="store_true", help="print feature variance statistics")
    parser.add_argument("--cache-dir", default=".benchmark-cache")
    parser.add_argument("--splits-dir", default="splits")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.embed and args.dataset != "panda-sim":
        raise SystemExit("--embed applies to the v2 features of panda-sim only")
    base = load_dataset(DataConfig(name=args.dataset, cache_dir=args.cache_dir))
    bags = base
    if args.sim or args.embed or args.variance:
        out = tempfile.mkdtemp(prefix="sim_probe_")
        embedding = _replace(PANDA_EMBEDDING, args.embed, "--embed") if args.dataset == "panda-sim" else None
        bags = generate_simulated(
            args.dataset, _replace(PandaSimParams(), args.sim, "--sim"), 0, out, embedding=embedding
        )
        if not np.array_equal(bags.fine_labels, base.fine_labels):
            raise SystemExit("--sim changed the slides or labels; only feature parameters can be probed")
    if args.variance:
        features = np.concatenate([np.asarray(bags.bag(i)) for i in range(len(bags))])
        patterns = np.load(f"{out}/patterns.npy")
        print(
            json.dumps(
                {args.dataset: (args.sim + args.embed) or "default", **variance_stats(features, patterns)}
            )
        )
        digits = load_digits_8x8()
        groups = np.where(np.isin(digits.digits, [3, 4, 5]), digits.digits, -1)
        print(json.dumps({"digits 8x8": "patterns 3/4/5/other", **variance_stats(digits.pixels, groups)}))
    cv = CVConfig()
    splits, _, _ = get_or_create_splits(args.splits_dir, base.name, base.table(), cv)
    for model in (m.strip() for m in args.models.split(",") if m.strip()):
        config = resolve_run_config(
            model,
            data=DataConfig(name=args.dataset),
            cv=cv,
            seed=0,
            overrides=Overrides(train={"device": "cpu"}),
        )
        aucs = []
        for fold in (int(f) for f in args.folds.split(",")):
            outcome = train_fold(
                config, bags, fold_indices(splits, bags.table(), fold), seed=fold_seed(0, fold)
            )
            aucs.append(outcome.test.flat("test")["test.fine.auc"])
        print(
            json.dumps(
                {
                    "model": model,
                    "sim": args.sim,
                    "test_fine_auc": [round(a, 4) for a in aucs],
                    "mean": round(float(np.mean(aucs)), 4),
                    "std": round(float(np.std(aucs, ddof=1)), 4),
                }
            )
        )


if __name__ == "__main__":
    main()
