"""Two worker builds side by side on one database: does B ingest the manual faster than A?

bench/ingest.py's ratio moves ±30% with this machine's mood (the same code measured 0.24 and
0.41 minutes apart; an idle extraction loop ran 597, 583 and 395 pages/s in three passes),
more than most changes are worth. This script pairs the measurements: one embedded
PostgreSQL, one API, one page server, and two sets of `projex worker --queue ingestion`
processes, A and B. A is a git ref checked out in a temporary worktree (or the working tree
with other settings), B the working tree. Only one set runs at a time (the other is
SIGSTOPped). Rounds go A B, B A, A B, …: each a new project with every page of the manual,
deleted (and the tables vacuumed) after the round so every round starts from the same
database. Each pair of rounds gives B/A for the wall time and for the CPU of the whole
system (workers, PostgreSQL, API, this process) per page; a drift of the machine slower
than a pair cancels out. Last line: the geometric means over the pairs with a 95% interval
(t distribution over the pairs' log ratios):

    pairs=… b_over_a_seconds=… [lo, hi] b_over_a_cpu=… [lo, hi]

`--ratio` also measures the bare-extraction baseline after each round (one pass, 2 s more a
round; ingest.py takes the median of six) and prints each round's ratio against it. Both
sides share the disk, whose file creation is slow for minutes after mass deletions (see
bench/ingest.py): the comparison holds, the absolute figures of a run started soon after
another do not.

Usage: uv run python bench/compare.py [--ref-a HEAD] [--env-a K=V] [--env-b K=V]
                                      [--pairs 10] [--workers 2] [--limit N] [--ratio]
"""

import argparse
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import manual_dir, pages, serve
from bench.ingest import (
    bearer,
    cpu_seconds,
    embedded_run_env,
    extraction_rate,
    free_port,
    postgres_pids,
    projex,
    sign_in,
    stop_embedded_postgres,
    wait_for_workers,
    wait_ready,
    wait_until_done,
)

ROOT = Path(__file__).resolve().parents[1]
# Two-sided 97.5% quantiles of Student's t by degrees of freedom (then ~1.96).
T975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
T975 |= {10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 30: 2.04}


def worktree(ref: str, tmp: Path) -> Path:
    path = tmp / "tree-a"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), ref],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return path


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs or [])


def interval(ratios: list[float]) -> tuple[float, float, float]:
    """Geometric mean of the ratios and its 95% interval."""
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), math.nan, math.nan
    df = len(logs) - 1
    t = T975.get(df) or next((v for k, v in sorted(T975.items()) if k >= df), 1.96)
    half = t * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


class Round:
    def __init__(self, side: str, seconds: float, cpu_ms: float) -> None:
        self.side, self.seconds, self.cpu_ms = side, seconds, cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ref-a", help="git ref for side A (default: the working tree)")
    parser.add_argument("--env-a", action="append", help="K=V for side A's workers")
    parser.add_argument("--env-b", action="append", help="K=V for side B's workers")
    parser.add_argument("--pairs", type=int, default=10, help="pairs of rounds (A+B)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limit", type=int, default=0, help="only the first N pages")
    parser.add_argument("--ratio", action="store_true", help="baseline after each round")
    args = parser.parse_args()

    directory = manual_dir()
    files = pages(directory)[: args.limit or None]
    httpd, origin = serve(directory)
    tmp = Path(tempfile.mkdtemp(prefix="projex-compare-"))
    env = embedded_run_env(
        tmp,
        origin,
        WORKER_CONCURRENCY=str(args.concurrency),
        # Stopped workers must not be taken for dead by the running ones.
        WORKER_STALLED_AFTER_SECONDS="3600",
        RECONCILE_STUCK_AFTER_SECONDS="3600",
    )
    trees = {"A": worktree(args.ref_a, tmp) if args.ref_a else ROOT, "B": ROOT}
    extra = {"A": parse_env(args.env_a), "B": parse_env(args.env_b)}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api_proc = projex(["serve", "--port", str(port), "--no-worker"], env)
    sets: dict[str, list[subprocess.Popen]] = {"A": [], "B": []}
    rounds: list[Round] = []
    try:
        wait_ready(base)
        from src.database import start_embedded_postgres  # attaches to the running server

        dsn = start_embedded_postgres(tmp / "pg").replace("postgresql+asyncpg", "postgresql")
        db = psycopg.connect(dsn, autocommit=True)
        logs = []
        for side in sets:
            for i in range(args.workers):
                log = tmp / f"worker-{side}{i}.log"
                logs.append(log)
                worker_env = {**env, **extra[side]}
                args_ = ["worker", "--queue", "ingestion"]
                sets[side].append(projex(args_, worker_env, log, cwd=trees[side]))
        wait_for_workers(logs)
        for procs in sets.values():
            for p in procs:
                p.send_signal(signal.SIGSTOP)

        token = sign_in(base, "compare@example.com")
        api = httpx.Client(base_url=f"{base}/api/v1", timeout=60, headers=bearer(token))
        urls = [f"{origin}/{f.name}" for f in files]
        for n in range(2 * args.pairs):
            side = "AB"[(n + n // 2) % 2]  # A B, B A, A B, …
            procs = sets[side]
            for p in procs:
                p.send_signal(signal.SIGCONT)
            time.sleep(0.5)
            project = api.post("/projects", json={"name": f"round {n}"}).json()["id"]
            groups = {"workers": [p.pid for p in procs], "api": [api_proc.pid]}
            groups["bench"] = [os.getpid()]
            pg_before = {pid: cpu_seconds([pid]) for pid in postgres_pids()}
            before = {name: cpu_seconds(pids) for name, pids in groups.items()}
            started = time.time()
            for i in range(0, len(urls), 1000):
                api.post(
                    f"/projects/{project}/urls", json={"urls": urls[i : i + 1000]}
                ).raise_for_status()
            seconds, _, stats = wait_until_done(api, project, len(urls), "chunked", started)
            cpu = {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()}
            cpu["postgres"] = sum(
                cpu_seconds([pid]) - pg_before.get(pid, 0.0) for pid in postgres_pids()
            )
            time.sleep(0.3)  # let the last job finish before its worker is stopped
            for p in procs:
                p.send_signal(signal.SIGSTOP)
            per_page = {k: 1000 * v / len(urls) for k, v in cpu.items()}
            rounds.append(Round(side, seconds, sum(per_page.values())))
            line = (
                f"round={n} side={side} seconds={seconds:.2f} failed={stats['failed']} "
                + " ".join(f"{k}={v:.2f}" for k, v in per_page.items())
            )
            # The next round starts from the same database.
            db.execute("DELETE FROM projects WHERE id = %s", (project,))
            db.execute("DELETE FROM procrastinate_jobs WHERE queue_name = 'embedding'")
            db.execute("VACUUM urls, chunks, procrastinate_jobs")
            if args.ratio:
                extract_rate = extraction_rate(files)
                line += f" ratio={len(urls) / seconds / extract_rate:.2f}"
            print(line, flush=True)
    finally:
        for procs in sets.values():
            for p in procs:
                p.send_signal(signal.SIGCONT)
                p.terminate()
        api_proc.terminate()
        for p in [api_proc, *sets["A"], *sets["B"]]:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        httpd.shutdown()
        stop_embedded_postgres(tmp / "pg")
        if args.ref_a:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(trees["A"])],
                cwd=ROOT,
                capture_output=True,
            )
        shutil.rmtree(tmp, ignore_errors=True)  # every round's snapshots: ~0.5 GB
    pairs = [(rounds[i], rounds[i + 1]) for i in range(0, len(rounds) - 1, 2)]
    pairs = [(a, b) if a.side == "A" else (b, a) for a, b in pairs]
    if pairs:
        s = interval([b.seconds / a.seconds for a, b in pairs])
        c = interval([b.cpu_ms / a.cpu_ms for a, b in pairs])
        print(
            f"pairs={len(pairs)} b_over_a_seconds={s[0]:.3f} [{s[1]:.3f}, {s[2]:.3f}]"
            f" b_over_a_cpu={c[0]:.3f} [{c[1]:.3f}, {c[2]:.3f}]"
        )


if __name__ == "__main__":
    main()
