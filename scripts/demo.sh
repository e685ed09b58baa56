#!/usr/bin/env bash
# The hot-zone demo: simulator + private Mosquitto + gateway, about a minute, then stops.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
exec .venv/bin/cellsafe demo --config config/example.toml "$@"
