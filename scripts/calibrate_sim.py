"""Calibrate the difficulty of ``panda-sim`` / ``bracs-sim`` with a minimal, self-contained gated ABMIL.

Trains gated attention MIL (Ilse et al. 2018: Linear D→512 + ReLU + Dropout 0.25, gated attention
128, Linear 512→K) on stratified 60/20/20 splits, keeps the epoch with the best validation fine macro
AUC and reports test fine macro AUC / accuracy, coarse accuracy / AUC (coarse probabilities = summed
fine probabilities) and, for panda-sim, the ISUP 2 vs 3 confusion. The real harness re-measures these.

Examples::

    .venv/bin/python scripts/calibrate_sim.py --dataset panda-sim --splits 0 1 2
    .venv/bin/python scripts/calibrate_sim.py --dataset panda-sim --set d34=0.8 label_noise=0.08
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import cohen_kappa_score, confusion_matrix, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, train_test_split
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.core.config import DataConfig  # noqa: E402
from benchmark.data.bags import BagCollection, pad_batch  # noqa: E402
from benchmark.data.sim.datasets import (  # noqa: E402
    BracsSimParams,
    PandaSimParams,
    generate_simulated,
    load_bracs_sim,
    load_panda_sim,
)

log = logging.getLogger("calibrate_sim")


class GatedABMIL(nn.Module):
    """Gated attention MIL: h = fc(x); a = softmax_N(w·(tanh(V h) ⊙ σ(U h))); logits = W Σ a h."""

    def __init__(
        self, dim: int, n_classes: int, hidden: int = 512, attn: int = 128, dropout: float = 0.25
    ) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.v, self.u, self.w = nn.Linear(hidden, attn), nn.Linear(hidden, attn), nn.Linear(attn, 1)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, D), mask (B, N) → logits (B, K)."""
        h = self.fc(x)  # (B, N, H)
        s = self.w(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h))).squeeze(-1)  # (B, N)
        a = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
        return self.head((a.unsqueeze(-1) * h).sum(dim=1))


def predict(model: nn.Module, bags: BagCollection, idx: np.ndarray, batch: int = 32) -> np.ndarray:
    """(len(idx), K) softmax probabilities on full bags."""
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(idx), batch):
            b = pad_batch(bags, idx[s : s + batch])
            out.append(torch.softmax(model(b.x, b.mask), dim=-1).numpy())
    return np.concatenate(out)


def macro_auc(y: np.ndarray, p: np.ndarray) -> float:
    labels = np.arange(p.shape[1])
    if len(np.unique(y)) < p.shape[1]:  # a class absent from a small split: AUC over the present ones
        keep = np.unique(y)
        return float(np.mean([roc_auc_score(y == k, p[:, k]) for k in keep]))
    return float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels))


def split_60_20_20(y: np.ndarray, cases: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/val/test indices; case-grouped (StratifiedGroupKFold) when cases repeat."""
    idx = np.arange(len(y))
    if len(np.unique(cases)) == len(cases):
        trval, test = train_test_split(idx, test_size=0.2, stratify=y, random_state=seed)
        train, val = train_test_split(trval, test_size=0.25, stratify=y[trval], random_state=seed)
        return train, val, test
    trval, test = next(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(idx, y, cases))
    tr, va = next(
        StratifiedGroupKFold(4, shuffle=True, random_state=seed).split(trval, y[trval], cases[trval])
    )
    return trval[tr], trval[va], test


def run_split(bags: BagCollection, split_seed: int, epochs: int, batch_size: int, lr: float) -> dict:
    """Train on one stratified (case-grouped) 60/20/20 split; return test metrics at the best-validation-AUC epoch."""
    y = bags.fine_labels
    train, val, test = split_60_20_20(y, np.asarray(bags.case_ids), split_seed)
    torch.manual_seed(split_seed)
    rng = np.random.default_rng(split_seed)
    model = GatedABMIL(bags.dim, bags.hierarchy.n_fine)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    best, best_state, best_epoch = -1.0, None, -1
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(train)
        losses = []
        for s in range(0, len(order), batch_size):
            b = pad_batch(bags, order[s : s + batch_size])
            loss = nn.functional.cross_entropy(model(b.x, b.mask), b.fine)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        auc = macro_auc(y[val], predict(model, bags, val))
        log.debug("epoch %d: train loss %.3f, val fine AUC %.3f", epoch, np.mean(losses), auc)
        if auc > best:
            best, best_state, best_epoch = auc, copy.deepcopy(model.state_dict()), epoch
    model.load_state_dict(best_state)
    p = predict(model, bags, test)
    h = bags.hierarchy
    yc, pc = h.coarse_of(y[test]), h.roll_up(p)
    pred = p.argmax(1)
    res = {
        "split": split_seed,
        "best_epoch": best_epoch,
        "val_fine_auc": best,
        "fine_auc": macro_auc(y[test], p),
        "fine_acc": float(np.mean(pred == y[test])),
        "coarse_auc": macro_auc(yc, pc),
        "coarse_acc": float(np.mean(pc.argmax(1) == yc)),
        "confusion": confusion_matrix(y[test], pred, labels=np.arange(h.n_fine)).tolist(),
    }
    if h.ordinal:
        res["qwk"] = float(cohen_kappa_score(y[test], pred, weights="quadratic"))
    return res


def load(args: argparse.Namespace, tmp: Path) -> BagCollection:
    if not args.set:
        loader = load_panda_sim if args.dataset == "panda-sim" else load_bracs_sim
        return loader(
            DataConfig(name=args.dataset, seed=args.seed, scale=args.scale, cache_dir=args.cache_dir)
        )
    base = PandaSimParams() if args.dataset == "panda-sim" else BracsSimParams()
    fields = {f.name: f for f in dataclasses.fields(base)}
    changes = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {item}: unknown generator parameter; valid: {', '.join(fields)}")
        default = getattr(base, key)
        if isinstance(default, tuple):  # comma-separated, typed like the default's items
            changes[key] = tuple(type(default[0])(v) for v in raw.split(","))
        else:
            changes[key] = type(default)(raw)
    params = dataclasses.replace(base, **changes).scaled(args.scale)
    return generate_simulated(args.dataset, params, args.seed, tmp / "data")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="panda-sim", choices=["panda-sim", "bracs-sim"])
    ap.add_argument("--seed", type=int, default=0, help="data generator seed")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--splits", type=int, nargs="+", default=[0], help="split/training seeds to average over")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=".benchmark-cache")
    ap.add_argument("--set", nargs="*", default=[], help="generator overrides, e.g. d34=0.8 tumour_beta=2,3")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every epoch")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        bags = load(args, Path(tmp))
        shares = np.bincount(bags.fine_labels, minlength=bags.hierarchy.n_fine) / len(bags)
        log.info(
            "%s: %d slides, %d instances, %d cases; fine shares %s (%.1fs)",
            bags.name,
            len(bags),
            int(bags.offsets[-1]),
            len(set(bags.case_ids)),
            np.round(shares, 3).tolist(),
            time.time() - t0,
        )
        results = []
        for split in args.splits:
            t0 = time.time()
            r = run_split(bags, split, args.epochs, args.batch_size, args.lr)
            results.append(r)
            log.info(
                "split %d: fine AUC %.3f acc %.3f | coarse AUC %.3f acc %.3f | qwk %s | best epoch %d (%.0fs)",
                split,
                r["fine_auc"],
                r["fine_acc"],
                r["coarse_auc"],
                r["coarse_acc"],
                f"{r['qwk']:.3f}" if "qwk" in r else "-",
                r["best_epoch"],
                time.time() - t0,
            )
    keys = ["fine_auc", "fine_acc", "coarse_auc", "coarse_acc"] + (["qwk"] if "qwk" in results[0] else [])
    summary = {
        k: (float(np.mean([r[k] for r in results])), float(np.std([r[k] for r in results]))) for k in keys
    }
    conf = np.sum([r["confusion"] for r in results], axis=0)
    log.info(
        "mean ± sd over %d split(s): %s",
        len(results),
        ", ".join(f"{k} {m:.3f} ± {s:.3f}" for k, (m, s) in summary.items()),
    )
    log.info("test confusion summed over splits (rows = true %s):\n%s", list(bags.hierarchy.fine), conf)
    if bags.name == "panda-sim":
        log.info("ISUP 2 vs 3 (rows true 2, 3; cols predicted 2, 3): %s", conf[2:4, 2:4].tolist())
    if args.json:
        Path(args.json).write_text(
            json.dumps({"args": vars(args), "summary": summary, "runs": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
