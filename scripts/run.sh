#!/usr/bin/env bash
# Builds Porter and runs it. With no arguments: `porter serve` on the embedded development
# default (loopback, ports 2525/2587/2465, data in ./var). Arguments go to porter instead,
# e.g. `scripts/run.sh serve --config etc/porter.toml`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
if [ "$#" -eq 0 ]; then set -- serve; fi
exec ./build/mta/porter "$@"
