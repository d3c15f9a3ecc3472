"""Ranking quality over the PostgreSQL manual: hit@5 and MRR@10 per search mode.

Ingests the manual from loopback through the real API until every page is `ready` (hashing
embedder by default), then asks the questions of bench/questions.tsv in each mode; a hit is
any chunk of an expected page. Usage: uv run python bench/eval_search.py [--provider hashing]
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import manual_dir, pages, serve
from bench.ingest import (
    bearer,
    embedded_run_env,
    free_port,
    projex,
    sign_in,
    stop_embedded_postgres,
    wait_ready,
)

QUESTIONS = Path(__file__).with_name("questions.tsv")


def load_questions() -> list[tuple[str, set[str]]]:
    out = []
    for line in QUESTIONS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            question, expected = line.split("\t")
            out.append((question, set(expected.split(","))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--provider", default="hashing")
    parser.add_argument("--weights", default="1,1", help="semantic,fulltext weights for hybrid")
    parser.add_argument("--rrf-k", type=int, default=60)
    parser.add_argument("--grid", action="store_true", help="also try other hybrid weights")
    args = parser.parse_args()
    directory = manual_dir()
    httpd, origin = serve(directory)
    tmp = Path(tempfile.mkdtemp(prefix="projex-eval-"))
    port = free_port()
    env = embedded_run_env(tmp, origin, EMBEDDING_PROVIDER=args.provider)
    proc = projex(["serve", "--port", str(port)], env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        token = sign_in(base, "eval@example.com")
        api = httpx.Client(base_url=f"{base}/api/v1", timeout=120, headers=bearer(token))
        project = api.post("/projects", json={"name": "manual"}).json()["id"]
        urls = [f"{origin}/{f.name}" for f in pages(directory)]
        for i in range(0, len(urls), 1000):
            api.post(
                f"/projects/{project}/urls", json={"urls": urls[i : i + 1000]}
            ).raise_for_status()
        while True:
            stats = api.get(f"/projects/{project}").json()["stats"]["urls"]
            if stats["ready"] + stats["failed"] >= len(urls):
                break
            time.sleep(1)
        ws, wf = (float(x) for x in args.weights.split(","))
        print(
            f"{'mode':24} hit@5  MRR@10  ({len(load_questions())} questions, "
            f"provider={args.provider})"
        )
        runs = [
            ("fulltext", ws, wf, args.rrf_k),
            ("semantic", ws, wf, args.rrf_k),
            ("hybrid", ws, wf, args.rrf_k),
        ]
        if args.grid:
            runs += [
                ("hybrid", a, b, k)
                for a, b in ((1, 2), (2, 1), (1, 1.5), (0.5, 1))
                for k in (10, 30, 60)
            ]
        for mode, w_sem, w_ft, rrf_k in runs:
            hits, rr = 0, 0.0
            for question, expected in load_questions():
                body = {
                    "query": question,
                    "mode": mode,
                    "top_k": 10,
                    "semantic_weight": w_sem,
                    "fulltext_weight": w_ft,
                    "rrf_k": rrf_k,
                }
                items = api.post(f"/projects/{project}/search", json=body).json()["items"]
                found = [h["url"]["url"].rsplit("/", 1)[-1] for h in items]
                rank = next((i + 1 for i, page in enumerate(found) if page in expected), None)
                hits += rank is not None and rank <= 5
                rr += 1 / rank if rank else 0
            n = len(load_questions())
            label = mode if mode != "hybrid" else f"hybrid w={w_sem:g},{w_ft:g} k={rrf_k}"
            print(f"{label:24} {hits / n:.2f}   {rr / n:.3f}")
    finally:
        proc.terminate()
        proc.wait(30)
        httpd.shutdown()
        stop_embedded_postgres(tmp / "pg")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
