#!/usr/bin/env bash
# Runs the benchmarks: planning (pure) and rollouts against the real Docker engine compared
# with the critical-path bound and with docker-compose. Prints the figures that
# docs/performance.md records. Needs Docker and docker-compose (Debian: apt-get install docker-compose).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v docker-compose >/dev/null; then
    echo "error: docker-compose is not installed (apt-get install docker-compose)" >&2
    exit 1
fi
cargo bench --bench plan
cargo bench --bench rollout -- "$@"
