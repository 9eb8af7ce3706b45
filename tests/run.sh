#!/usr/bin/env bash
# Install the test prerequisites when missing, then run the whole test suite
# (real gdb against real C fixtures, live and from core files).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-prereqs" --tests
cd "$root"
exec python3 -m pytest -q -p no:cacheprovider tests "$@"
