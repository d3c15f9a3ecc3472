"""Two worker builds side by side on one database: which one ingests the manual faster?

bench/ingest.py's ratio moves ±30% with this machine's mood (the same code measured 0.24 and
0.41 minutes apart), more than most changes are worth. This script pairs the measurements:
one embedded PostgreSQL, one API, one page server, and two sets of `projex worker --queue
ingestion` processes, A and B. A is a git ref checked out in a temporary worktree (or the
working tree with other settings), B the working tree. Only one set runs at a time (the
other is SIGSTOPped); rounds go A B B A A B …, each a new project with every page of the
manual, and each followed by the bare-extraction baseline, so a drift of the machine hits
both sides alike. Per round it prints the ratio (pages/s over extraction pages/s) and the
CPU of the whole system (workers, PostgreSQL, API, this process) per page, also in units of
the baseline's extraction time per page (`cost`). The machine's speed changes within
seconds (an idle extraction loop: 597, 583, 395 pages/s in three passes), so compare the
medians of many rounds, not one round. Last lines (medians over the rounds):

    a_seconds=… b_seconds=… a_cpu_ms=… b_cpu_ms=… b_over_a_seconds=… b_over_a_cpu=…
    a_ratio=… b_ratio=… a_cost=… b_cost=… b_over_a_cost=…

Usage: uv run python bench/compare.py [--ref-a HEAD] [--env-a K=V] [--env-b K=V]
                                      [--rounds 8] [--workers 2] [--limit N]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import manual_dir, pages, serve
from bench.ingest import (
    cpu_seconds,
    embedded_run_env,
    extraction_rate,
    free_port,
    postgres_pids,
    projex,
    stop_embedded_postgres,
    wait_ready,
    wait_until_done,
)

ROOT = Path(__file__).resolve().parents[1]


def worktree(ref: str, tmp: Path) -> Path:
    path = tmp / f"tree-{ref.replace('/', '_')}"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), ref],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return path


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs or [])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ref-a", help="git ref for side A (default: the working tree)")
    parser.add_argument("--env-a", action="append", help="K=V for side A's workers")
    parser.add_argument("--env-b", action="append", help="K=V for side B's workers")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limit", type=int, default=0)
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
    try:
        wait_ready(base)
        logs = []
        for side in sets:
            for i in range(args.workers):
                log = tmp / f"worker-{side}{i}.log"
                logs.append(log)
                sets[side].append(
                    projex(
                        ["worker", "--queue", "ingestion"],
                        {**env, **extra[side]},
                        log,
                        cwd=trees[side],
                    )
                )
        deadline = time.monotonic() + 120
        while not all(log.exists() and "worker ready" in log.read_text() for log in logs):
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not start; logs in {tmp}")
            time.sleep(0.2)
        for procs in sets.values():
            for p in procs:
                p.send_signal(signal.SIGSTOP)

        api = httpx.Client(base_url=f"{base}/api/v1", timeout=60)
        creds = {"email": "compare@example.com", "password": "benchmark password"}
        api.post("/auth/register", json=creds).raise_for_status()
        token = api.post(
            "/auth/login", data={"username": creds["email"], "password": creds["password"]}
        ).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        urls = [f"{origin}/{f.name}" for f in files]
        order = ["A", "B", "B", "A"]
        results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
        for n in range(args.rounds):
            side = order[n % 4]
            procs = sets[side]
            for p in procs:
                p.send_signal(signal.SIGCONT)
            time.sleep(0.5)
            project = api.post("/projects", json={"name": f"round {n}"}).json()["id"]
            groups = {
                "workers": [p.pid for p in procs],
                "api": [api_proc.pid],
                "bench": [os.getpid()],
            }
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
            extract_rate = extraction_rate(files)
            extract_ms = 1000 / extract_rate
            rate = len(urls) / seconds
            per_page = {k: 1000 * v / len(urls) for k, v in cpu.items()}
            cost = sum(per_page.values()) / extract_ms
            results[side].append((rate / extract_rate, cost, seconds, sum(per_page.values())))
            print(
                f"round={n} side={side} seconds={seconds:.2f} failed={stats['failed']} "
                f"ratio={rate / extract_rate:.2f} cost={cost:.2f} extract_ms={extract_ms:.2f} "
                + " ".join(f"{k}={v:.2f}" for k, v in per_page.items()),
                flush=True,
            )
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
    med = {
        side: tuple(statistics.median(r[i] for r in rows) for i in range(4))
        for side, rows in results.items()
        if rows
    }
    if len(med) == 2:
        a, b = med["A"], med["B"]
        print(
            f"a_seconds={a[2]:.2f} b_seconds={b[2]:.2f} a_cpu_ms={a[3]:.2f} b_cpu_ms={b[3]:.2f}"
            f" b_over_a_seconds={b[2] / a[2]:.2f} b_over_a_cpu={b[3] / a[3]:.2f}"
        )
        print(
            f"a_ratio={a[0]:.2f} b_ratio={b[0]:.2f} a_cost={a[1]:.2f} "
            f"b_cost={b[1]:.2f} b_over_a_cost={b[1] / a[1]:.2f}"
        )


if __name__ == "__main__":
    main()
