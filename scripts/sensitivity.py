"""Fine AUC vs the label-pattern variance share: when is HMIL's shared head safe? (docs/hmil.md §7)

panda-sim v2 is regenerated with several ``signal_gain`` values: the slides, labels, cases, sites and
folds stay those of the default panda-sim (checked), only the strength of the tissue pattern in the
features changes. For each gain the script measures the pattern's share of the instance-feature variance
(`benchmark.data.stats`) and trains each model on every fold through the harness (`train_fold`, the
default equal budget: 16 bags per step, early stopping on validation fine macro AUC), then records the
test fine/coarse macro AUC per fold.

Examples::

    .venv/bin/python scripts/sensitivity.py --gains 0.4,0.7 --out docs/data/sens-a.csv      # one core each
    .venv/bin/python scripts/sensitivity.py --gains 1.0,1.5 --out docs/data/sens-b.csv
    .venv/bin/python scripts/sensitivity.py --plot docs/figures/sensitivity.png docs/data/sens-*.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.core.config import CVConfig, DataConfig
from benchmark.core.overrides import Overrides
from benchmark.cv.files import fold_indices, get_or_create_splits
from benchmark.data import load_dataset
from benchmark.data.sim.datasets import PANDA_EMBEDDING, PandaSimParams, generate_simulated
from benchmark.data.stats import feature_stats
from benchmark.run.resolve import resolve_run_config
from benchmark.run.setup import fold_seed
from benchmark.run.train import train_fold


def measure(
    gains: list[float],
    models: list[str],
    folds: list[int],
    epochs: int | None,
    out: Path,
    cache_dir: str,
    splits_dir: str,
) -> None:
    base = load_dataset(DataConfig(name="panda-sim", cache_dir=cache_dir))
    cv = CVConfig()
    splits, _, digest = get_or_create_splits(splits_dir, base.name, base.table(), cv)
    rows = []
    for gain in gains:
        tmp = tempfile.mkdtemp(prefix="sens_")
        embedding = dataclasses.replace(PANDA_EMBEDDING, signal_gain=gain)
        bags = generate_simulated("panda-sim", PandaSimParams(), 0, tmp, embedding=embedding)
        if not np.array_equal(bags.fine_labels, base.fine_labels) or bags.slide_ids != base.slide_ids:
            raise SystemExit("the regenerated set changed slides or labels")
        share = feature_stats(
            bags, instance_labels=np.load(Path(tmp) / "patterns.npy")
        ).pattern_variance_share
        print(f"signal_gain={gain}: pattern variance share {share:.4f}", flush=True)
        for model in models:
            train = {"device": "cpu"} | ({"epochs": str(epochs)} if epochs else {})
            config = resolve_run_config(
                model,
                data=DataConfig(name="panda-sim"),
                cv=cv,
                seed=0,
                overrides=Overrides(train=train),
            )
            for fold in folds:
                outcome = train_fold(
                    config, bags, fold_indices(splits, bags.table(), fold), seed=fold_seed(0, fold)
                )
                flat = outcome.test.flat("test")
                rows.append(
                    {
                        "signal_gain": gain,
                        "pattern_share": share,
                        "model": model,
                        "fold": fold,
                        "fine_auc": flat["test.fine.auc"],
                        "coarse_auc": flat["test.coarse.auc"],
                        "fine_accuracy": flat["test.fine.accuracy"],
                        "steps": outcome.steps,
                        "split_digest": digest[:12],
                    }
                )
                print(f"  {model} fold {fold}: fine AUC {flat['test.fine.auc']:.3f}", flush=True)
            pd.DataFrame(rows).to_csv(out, index=False)  # after every model: a crash keeps what finished


def plot(csvs: list[str], path: str) -> None:
    import seaborn as sns  # the palette; the error bars are drawn per model so they can be dodged
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    df = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
    df["share_pct"] = 100 * df["pattern_share"]
    summary = df.groupby(["model", "signal_gain", "share_pct"])["fine_auc"].agg(["mean", "std", "count"])
    print(summary.round(3).to_string())
    fig = Figure(figsize=(6.8, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    order = [m for m in ("abmil", "hmil", "hmil-pc") if m in set(df["model"])]
    palette = sns.color_palette("colorblind", len(order))
    markers = {"abmil": "o", "hmil": "s", "hmil-pc": "^"}
    for k, (model, colour) in enumerate(zip(order, palette, strict=True)):
        rows = summary.loc[model].reset_index()
        dodge = 1.0 + 0.025 * (k - (len(order) - 1) / 2)  # multiplicative: the x axis is logarithmic
        ax.errorbar(
            rows["share_pct"] * dodge,
            rows["mean"],
            yerr=rows["std"],
            color=colour,
            marker=markers[model],
            capsize=3,
            lw=1.6,
            ms=6,
            label=model,
        )
    default = df.loc[np.isclose(df["signal_gain"], 1.0), "share_pct"]
    if len(default):
        ax.axvline(float(default.iloc[0]), color="grey", ls=":", lw=1)
        ax.text(
            float(default.iloc[0]) * 0.97,
            0.985,
            "panda-sim default",
            color="grey",
            fontsize=8,
            ha="right",
            va="top",
        )
    ax.axhline(0.5, color="grey", lw=0.6, ls="--")
    shares = sorted(df["share_pct"].unique())
    ax.set_xscale("log")
    ax.set_xticks(shares, [f"{v:.1f}" for v in shares])
    ax.minorticks_off()
    n_folds = int(df.groupby(["model", "signal_gain"])["fold"].nunique().min())
    ax.set(
        xlabel="tissue-pattern share of the instance-feature variance (%, log scale)",
        ylabel="test fine macro AUC",
        ylim=(0.45, 1.0),
        title=f"panda-sim v2, equal budgets: fine AUC vs pattern share (mean ± sd, {n_folds} folds)",
    )
    ax.title.set_fontsize(10)
    ax.legend(title="model", frameon=False, loc="lower right")
    ax.grid(alpha=0.3)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gains", default="0.4,0.7,1.0,1.5", help="comma-separated signal_gain values")
    parser.add_argument("--models", default="abmil,hmil,hmil-pc")
    parser.add_argument("--folds", default="0,1,2,3,4", help="fold columns of the default 5-fold split")
    parser.add_argument("--epochs", type=int, default=None, help="max epochs (default: the harness's 20)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="docs/data/sensitivity.csv")
    parser.add_argument("--cache-dir", default=".benchmark-cache")
    parser.add_argument("--splits-dir", default="splits")
    parser.add_argument("--plot", default=None, help="only plot: write this figure from the CSVs given")
    parser.add_argument("csvs", nargs="*", help="CSV files for --plot")
    args = parser.parse_args()
    if args.plot:
        plot(args.csvs or [args.out], args.plot)
        return
    torch.set_num_threads(args.threads)
    measure(
        [float(g) for g in args.gains.split(",")],
        [m for m in args.models.split(",") if m],
        [int(f) for f in args.folds.split(",")],
        args.epochs,
        Path(args.out),
        args.cache_dir,
        args.splits_dir,
    )


if __name__ == "__main__":
    main()
