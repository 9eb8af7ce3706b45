#!/usr/bin/env bash
# Install the test prerequisites when missing, then run the whole test suite
# (real gdb against real C fixtures and a real Janus, live and from core files).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-prereqs" --tests
# a real Janus 1.1.2 (debug build, cached) for tests/test_janus_real.py; they
# skip with the reason when it cannot be built
if prefix=$(bash "$root/scripts/build-janus" | tail -n 1) && [ -x "$prefix/bin/janus" ]; then
  export JANUS_PREFIX="$prefix"
else
  export JANUS_BUILD_ERROR="scripts/build-janus failed (see its output above)"
fi
cd "$root"
exec python3 -m pytest -q -p no:cacheprovider tests "$@"
