#!/usr/bin/env bash
# Builds Porter and runs the whole test suite: Catch2 unit tests and the integration tests
# that start the real binary on loopback and talk to it with real clients.
# Pass ctest arguments to narrow it, e.g. `scripts/test.sh -L unit` or `-L smtp`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@"
