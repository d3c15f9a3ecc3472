#!/usr/bin/env bash
# The whole suite against a real (embedded, or TEST_DATABASE_URL) PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
uv run pytest "$@"
