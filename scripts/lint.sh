#!/usr/bin/env bash
# Lint without changing anything (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
uv run ruff check .
uv run ruff format --check .
