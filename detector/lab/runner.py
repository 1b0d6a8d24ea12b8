"""Plans the sessions of a lab run, runs them (optionally two at a time), and writes the dataset files."""

from __future__ import annotations

import csv
import random
import shutil
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from detector.lab.driver import PATTERNS
from detector.lab.netns import STOPPING, LabError, install_signal_handlers, lab_namespaces, new_token, teardown_all
from detector.lab.pki import make_pki
from detector.lab.session import LABEL_COLUMNS, SessionPlan, run_session
from detector.lab.variant import Variant

STATS_COLUMNS = ["capture", "variant", "label", "protocol", "condition", "pattern", "seed", "server_port",
                 "flows", "packets", "bytes", "seconds"]
CONDITION_CYCLE = ("lan", "wan30", "wan150loss1")


def plan_sessions(variants: list[Variant], sessions: int, seed: int) -> list[SessionPlan]:
    plans = []
    for v in variants:
        rng = random.Random(zlib.crc32(f"{seed}:{v.name}".encode()))
        patterns = list(v.extra.get("patterns", PATTERNS))
        rng.shuffle(patterns)
        for i in range(sessions):
            plans.append(SessionPlan(
                variant=v, index=i,
                seed=zlib.crc32(f"{seed}:{v.name}:{i}".encode()),
                pattern=patterns[i % len(patterns)],
                condition=CONDITION_CYCLE[i % len(CONDITION_CYCLE)],
                # Session 1 always moves to a random port; later sessions do so by chance.
                random_port=(i == 1) or (i >= 3 and rng.random() < 0.5),
            ))
    return plans


@dataclass
class RunResult:
    rows: list[dict] = field(default_factory=list)
    stats: list[dict] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def run_lab(variants: list[Variant], sessions: int, seed: int, out_dir: Path, work_root: Path,
            jobs: int = 1, retries: int = 1, keep_work: bool = False, log=print) -> RunResult:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    token = new_token()
    workdir = Path(work_root).resolve() / f"run-{token}"
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki")
    plans = plan_sessions(variants, sessions, seed)
    result = RunResult()
    lock = threading.Lock()
    t0 = time.monotonic()

    def one(plan: SessionPlan):
        last = None
        for attempt in range(retries + 1):
            try:
                return run_session(plan, workdir, out_dir, pki)
            except Exception as exc:  # a crash in one session must not stop the others; it is reported
                last = exc if isinstance(exc, LabError) else LabError(f"{type(exc).__name__}: {exc}")
                if attempt < retries:
                    log(f"  retry {plan.capture_name}: {exc}")
        raise last

    install_signal_handlers()
    STOPPING.clear()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(one, p): p for p in plans}
        for fut in as_completed(futures):
            plan = futures[fut]
            try:
                rows, stats = fut.result()
            except LabError as exc:
                with lock:
                    result.failures.append((plan.capture_name, str(exc)))
                log(f"FAIL {plan.capture_name}: {exc}")
                continue
            with lock:
                result.rows.extend(rows)
                result.stats.append(stats)
            log(f"ok   {plan.capture_name:34s} {plan.condition:12s} {plan.pattern:11s} port {stats['server_port']:<5} "
                f"{stats['flows']:3d} flows {stats['packets']:5d} pkts {stats['seconds']:5.1f} s")
        pool.shutdown(wait=True)
    except BaseException:
        # Interrupted: no new session starts, running ones lose their processes and namespaces now.
        STOPPING.set()
        pool.shutdown(wait=False, cancel_futures=True)
        teardown_all()
        pool.shutdown(wait=True)
        teardown_all()
        raise
    finally:
        teardown_all()
        if not keep_work:
            shutil.rmtree(workdir, ignore_errors=True)
    result.seconds = time.monotonic() - t0
    write_dataset(out_dir, result, {v.name for v in variants})
    from detector.lab import netns

    leftovers = sorted(netns._EVER_CREATED & set(lab_namespaces()))
    leaked = netns.leaked_processes()
    if leftovers or leaked:
        raise LabError(f"left behind: namespaces {leftovers}, processes {leaked}")
    return result


def write_dataset(out_dir: Path, result: RunResult, rebuilt: set[str]) -> None:
    """Replace the rows and captures of the variants this run rebuilt; keep those of other variants."""
    labels_path, stats_path = out_dir / "labels.csv", out_dir / "captures.csv"
    fresh = {s["capture"] for s in result.stats}
    for old in out_dir.glob("*.pcap.gz"):
        variant = old.name.rsplit("_", 1)[0]
        if variant in rebuilt and old.name not in fresh:
            old.unlink()
    for path, columns, new_rows in ((labels_path, LABEL_COLUMNS, result.rows), (stats_path, STATS_COLUMNS, result.stats)):
        kept = []
        if path.exists():
            with open(path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if r["variant"] not in rebuilt]
        rows = kept + [{k: r[k] for k in columns} for r in new_rows]
        rows.sort(key=lambda r: (r["capture"], str(r.get("server_ip", "")), str(r.get("server_port", "")),
                                 r.get("transport", "")))
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)
