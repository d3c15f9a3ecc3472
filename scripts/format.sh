#!/usr/bin/env bash
# Format and auto-fix the code base.
set -euo pipefail
cd "$(dirname "$0")/.."
uv run ruff check --fix .
uv run ruff format .
