"""``benchmark perf``: our batched, preloaded training path vs a reference-style loop, measured in one run.

The reference-style loop mirrors the public MIL trainers (CLAM, TransMIL, DSMIL): one bag per
optimiser step and the bag's features read from its own ``pt_files/<slide>.pt`` file at every step
of every epoch. Both paths train the same freshly seeded model for the same number of epochs on the
same slides; speed is reported as slides/s and as the ratio batched / reference, which is robust to
how busy the machine is. Peak RAM is the sampled process RSS during each phase.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.config import DataConfig
from benchmark.data import BagCollection, load_dataset, pad_batch
from benchmark.models import build_model, resolve_model_params
from benchmark.run.inference import predict
from benchmark.run.memory import PeakMemory
from benchmark.run.resolve import expand_models
from benchmark.run.setup import resolve_device, seed_everything

__all__ = ["run_perf"]

log = logging.getLogger(__name__)


def _subset(bags: BagCollection, n: int | None) -> BagCollection:
    if n is None or n >= len(bags):
        return bags
    stop = int(bags.offsets[n])
    return BagCollection(
        name=bags.name,
        slide_ids=bags.slide_ids[:n],
        case_ids=bags.case_ids[:n],
        fine_labels=bags.fine_labels[:n],
        features=np.asarray(bags.features[:stop]),
        offsets=bags.offsets[: n + 1],
        hierarchy=bags.hierarchy,
        sites=bags.sites[:n] if bags.sites else None,
        fingerprint=bags.fingerprint,
        info=bags.info,
    )


def _write_pt_files(bags: BagCollection, root: Path) -> list[Path]:
    """CLAM layout ``pt_files/<slide>.pt`` (float32 tensors), as a feature extractor would leave them."""
    out = root / "pt_files"
    out.mkdir(parents=True)
    paths = []
    for i, sid in enumerate(bags.slide_ids):
        path = out / f"{sid}.pt"
        torch.save(torch.from_numpy(np.asarray(bags.bag(i), dtype=np.float32)), path)
        paths.append(path)
    return paths


def _batched(model, bags, epochs, batch_size, device) -> dict[str, float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    rng = np.random.default_rng(0)
    index = np.arange(len(bags))
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        for _ in range(epochs):
            model.train()
            for chunk in np.array_split(rng.permutation(index), max(1, len(index) // batch_size)):
                batch = pad_batch(bags, chunk).to(device)
                loss = F.cross_entropy(model(batch.x, batch.mask).logits.float(), batch.fine)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        t1 = time.perf_counter()
        predict(model, bags, index, batch_size=batch_size, device=device, amp=False)
        t2 = time.perf_counter()
    return {
        "train_slides_per_s": epochs * len(bags) / (t1 - t0),
        "eval_slides_per_s": len(bags) / (t2 - t1),
        "peak_ram_mib": mem.peak_mb,
    }


def _reference(model, bags, paths, epochs, device) -> dict[str, float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(bags.fine_labels)
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        for _ in range(epochs):
            model.train()
            for i in rng.permutation(len(bags)):
                x = torch.load(paths[i], weights_only=True).unsqueeze(0).to(device)  # re-read every step
                mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device)
                loss = F.cross_entropy(model(x, mask).logits.float(), labels[i : i + 1].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        t1 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            for i in range(len(bags)):
                x = torch.load(paths[i], weights_only=True).unsqueeze(0).to(device)
                model(x, torch.ones(x.shape[:2], dtype=torch.bool, device=device))
        t2 = time.perf_counter()
    return {
        "train_slides_per_s": epochs * len(bags) / (t1 - t0),
        "eval_slides_per_s": len(bags) / (t2 - t1),
        "peak_ram_mib": mem.peak_mb,
    }


def run_perf(
    data: DataConfig,
    models: Sequence[str],
    *,
    epochs: int = 2,
    batch_size: int = 16,
    max_slides: int | None = None,
    device: str = "auto",
) -> list[dict[str, object]]:
    """Measure both paths for every model; returns one row per (model, path) with speed-up ratios."""
    dev = resolve_device(device)
    bags = _subset(load_dataset(data), max_slides)
    # The batched path trains from RAM: materialise a memory-mapped cache once, outside the timing.
    bags.features = np.ascontiguousarray(bags.features)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="benchmark-perf-") as tmp:
        paths = _write_pt_files(bags, Path(tmp))
        for name in expand_models(models):
            params = resolve_model_params(name)
            results = {}
            for path in ("reference", "batched"):
                seed_everything(0)
                model = build_model(name, params, in_dim=bags.dim, hierarchy=bags.hierarchy).to(dev)
                if path == "batched":
                    results[path] = _batched(model, bags, epochs, batch_size, dev)
                else:
                    results[path] = _reference(model, bags, paths, epochs, dev)
            ref, ours = results["reference"], results["batched"]
            common = {"model": name, "slides": len(bags), "epochs": epochs, "device": str(dev)}
            rows.append({**common, "path": "reference (batch 1, re-read files)", **ref})
            rows.append(
                {
                    **common,
                    "path": f"batched (batch {batch_size}, preloaded)",
                    **ours,
                    "train_speedup": ours["train_slides_per_s"] / ref["train_slides_per_s"],
                    "eval_speedup": ours["eval_slides_per_s"] / ref["eval_slides_per_s"],
                }
            )
            log.info("%s: train ×%.1f, eval ×%.1f", name, rows[-1]["train_speedup"], rows[-1]["eval_speedup"])
    return rows
