"""Peak memory of ``benchmark run`` on a realistic CLAM-layout feature set, against the issue-11 target.

Writes (once; reused while its parameters match) a set shaped like CLAM's output for a WSI cohort:
``<out>/data/pt_files/<slide>.pt`` float32 tensors (N, D) with N in [min, max], a labels CSV and a
hierarchy TOML for the ``csv`` dataset. Then runs, per variant, ::

    benchmark run --dataset csv --data-dir <out>/data --models abmil --folds 2 --epochs 1 --threads 1 ...

under ``/usr/bin/time -v`` (peak RSS as the kernel counts it) while sampling the process's anonymous and
file-backed resident memory (a memory map's pages are file-backed: the kernel can drop them). Prints per
variant: peak RSS, the feature bytes held (T · D · itemsize), the target ``feature bytes × 1.3 + 600 MiB``,
wall time and the test fine macro AUC (mean over folds).

Examples::

    .venv/bin/python scripts/memory_probe.py                                    # 300 slides, 4 variants
    .venv/bin/python scripts/memory_probe.py --variants source,fp16 --extra="--max-batch-instances 4096"
    .venv/bin/python scripts/memory_probe.py --slides 30 --out /tmp/probe-small   # a quick check

Variants: ``source`` / ``fp16`` / ``fp32`` (``--feature-dtype``), with ``-mm`` for a forced memory map
(``--preload-max-gb 0``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from benchmark.data import fixtures as fx

MIB = 2**20
FINE = ("normal", "benign-lesion", "low-grade", "high-grade")
GROUPS = {"benign": ["normal", "benign-lesion"], "malignant": ["low-grade", "high-grade"]}


def generate(out: Path, slides: int, lo: int, hi: int, dim: int, seed: int, signal: float) -> int:
    """Write the set into ``out/data`` (skipped when ``meta.json`` matches); returns T, the instance count.

    Instances are softplus(prototype + noise), non-negative like pooled CNN activations; a slide of class c
    mixes background instances with a class-c share growing with c, so the labels are learnable.
    """
    params = {"slides": slides, "min": lo, "max": hi, "dim": dim, "seed": seed, "signal": signal}
    meta = out / "data" / "meta.json"
    if meta.exists() and json.loads(meta.read_text())["params"] == params:
        return int(json.loads(meta.read_text())["instances"])
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((len(FINE) + 1, dim)).astype(np.float32)  # row 0: background tissue
    rows, total = [], 0
    for i in range(slides):
        label = i % len(FINE)
        n = int(rng.integers(lo, hi + 1))
        share = 0.05 + 0.1 * label
        kind = np.where(rng.random(n) < share, label + 1, 0)
        x = signal * protos[kind] + rng.standard_normal((n, dim), dtype=np.float32)
        x = np.logaddexp(0.0, x).astype(np.float32)
        sid = f"slide_{i:04d}"
        fx.write_pt(out / "data", {sid: x})  # one slide at a time: the generator never holds the set
        rows.append({"slide_id": sid, "label": FINE[label], "case_id": f"case_{i:04d}"})
        total += n
    fx.write_labels_csv(out / "data" / "labels.csv", rows)
    fx.write_hierarchy_toml(out / "data" / "hierarchy.toml", GROUPS, fine=FINE, ordinal=True)
    meta.write_text(json.dumps({"params": params, "instances": total}))
    return total


def _sample(pid: int, peaks: dict[str, float], stop: threading.Event) -> None:
    """Largest RssAnon / RssFile (MiB) of ``pid``'s descendants, sampled every 50 ms."""
    while not stop.is_set():
        try:
            kids = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for kid in kids:
            try:
                status = Path(f"/proc/{kid.pid}/status").read_text()
            except OSError:
                continue
            for key in ("RssAnon", "RssFile"):
                m = re.search(rf"^{key}:\s+(\d+) kB", status, re.M)
                if m:
                    peaks[key] = max(peaks.get(key, 0.0), int(m.group(1)) / 1024)
        stop.wait(0.05)


def _test_auc(db: Path) -> float:
    """Mean over fold runs of the logged ``test.fine.auc``."""
    con = sqlite3.connect(db)
    roles = {
        r: v for r, k, v in con.execute("select run_uuid, key, value from tags") if k == "benchmark.role"
    }
    values = [
        v
        for r, k, v in con.execute("select run_uuid, key, value from metrics")
        if k == "test.fine.auc" and roles.get(r) == "fold"
    ]
    return float(np.mean(values)) if values else float("nan")


def run_variant(out: Path, name: str, args: argparse.Namespace) -> dict[str, float | str]:
    """One ``benchmark run`` under ``/usr/bin/time -v``; its measurements."""
    dtype, _, mm = name.partition("-")
    work = out / "runs" / name
    work.mkdir(parents=True, exist_ok=True)
    for old in ("m.db", "cache"):  # every variant starts cold: no pack, no finished folds to skip
        subprocess.run(["rm", "-rf", str(work / old)], check=True)
    bench = str(Path(sys.executable).with_name("benchmark"))
    cmd = [bench, "run", "--dataset", "csv", "--data-dir", str(out / "data"), "--models", args.model]
    cmd += ["--folds", "2", "--epochs", str(args.epochs), "--threads", "1", "--feature-dtype", dtype]
    cmd += ["--tracking-uri", f"sqlite:///{work / 'm.db'}", "--cache-dir", str(work / "cache")]
    cmd += ["--splits-dir", str(out / "splits"), "--no-compare", "-v", *shlex.split(args.extra)]
    cmd += ["--preload-max-gb", "0"] if mm else []
    timing = work / "time.txt"
    peaks: dict[str, float] = {}
    stop = threading.Event()
    start = time.monotonic()
    with open(work / "log.txt", "w") as log:
        env = {**os.environ, "COLUMNS": "400"}  # one log record per line, for the data lines below
        proc = subprocess.Popen(
            ["/usr/bin/time", "-v", "-o", str(timing), *cmd], stdout=log, stderr=log, env=env
        )
        sampler = threading.Thread(target=_sample, args=(proc.pid, peaks, stop), daemon=True)
        sampler.start()
        rc = proc.wait()
    stop.set()
    sampler.join()
    if rc != 0:
        raise SystemExit(f"variant {name} failed (exit {rc}); see {work / 'log.txt'}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing.read_text()).group(1))
    lines = [
        ln
        for ln in (work / "log.txt").read_text().splitlines()
        if re.search("preloaded|RAM budget|packed", ln)
    ]
    return {
        "variant": name,
        "peak_rss_mib": rss_kb / 1024,
        "peak_anon_mib": peaks.get("RssAnon", float("nan")),
        "peak_file_mib": peaks.get("RssFile", float("nan")),
        "wall_s": time.monotonic() - start,
        "test_fine_auc": _test_auc(work / "m.db"),
        "data_log": " | ".join(re.sub(r"\s+", " ", ln).strip() for ln in lines),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/memprobe"), help="set and runs go here")
    p.add_argument("--slides", type=int, default=300)
    p.add_argument("--min-instances", type=int, default=500)
    p.add_argument("--max-instances", type=int, default=1000)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--signal", type=float, default=0.15, help="class prototype strength (AUC difficulty)")
    p.add_argument("--model", default="abmil")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--variants", default="source,fp16,source-mm,fp16-mm")
    p.add_argument("--extra", default="", help='more `benchmark run` options, e.g. --extra="--batch-size 8"')
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.monotonic()
    total = generate(
        args.out, args.slides, args.min_instances, args.max_instances, args.dim, args.seed, args.signal
    )
    print(
        f"set: {args.out / 'data'}: {args.slides} slides, {total} instances, D={args.dim} "
        f"({time.monotonic() - t0:.0f} s)",
        flush=True,
    )
    for name in args.variants.split(","):
        r = run_variant(args.out, name, args)
        itemsize = 2 if name.startswith("fp16") else 4  # the files are float32: "source" holds float32
        feat_mib = total * args.dim * itemsize / MIB
        target = feat_mib * 1.3 + 600
        verdict = "meets" if r["peak_rss_mib"] <= target else "MISSES"
        print(
            f"{name:10s} peak RSS {r['peak_rss_mib']:7.0f} MiB (anon {r['peak_anon_mib']:.0f}, file-backed "
            f"{r['peak_file_mib']:.0f}) | features {feat_mib:.0f} MiB | target {target:.0f} MiB: {verdict} | "
            f"wall {r['wall_s']:.0f} s | test fine AUC {r['test_fine_auc']:.4f}",
            flush=True,
        )
        print(f"           data: {r['data_log']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
