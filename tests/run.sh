#!/usr/bin/env bash
# Install the test prerequisites when missing, then run the whole test suite
# (real gdb against real C fixtures and a real Janus, live and from core files).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-prereqs" --tests
# two real Janus versions (debug builds, cached): Debian bookworm's 1.1.2
# (JANUS_PREFIX) and Debian sid's 1.4.1 (JANUS_PREFIX_NEWER), for
# tests/test_janus_real.py, tests/test_janus_versions.py etc.; their tests skip
# with the reason when a build failed (JANUS_BUILD_ERROR, JANUS_BUILD_ERROR_NEWER)
build_janus() {  # VERSION PREFIX_VAR ERROR_VAR
  local out err prefix
  err=$(mktemp)
  if out=$(JANUS_VERSION=$1 bash "$root/scripts/build-janus" 2>"$err"); then
    cat "$err" >&2; rm -f "$err"
    prefix=$(printf '%s\n' "$out" | tail -n 1)
    if [ -x "$prefix/bin/janus" ]; then
      export "$2=$prefix"
      return
    fi
    export "$3=scripts/build-janus (JANUS_VERSION=$1) printed no usable prefix: $prefix"
    return
  fi
  cat "$err" >&2
  export "$3=scripts/build-janus (JANUS_VERSION=$1) failed: $(grep -m1 '^build-janus:' "$err" \
    || tail -n 1 "$err") (its output is above)"
  rm -f "$err"
}
build_janus 1.1.2 JANUS_PREFIX JANUS_BUILD_ERROR
build_janus 1.4.1 JANUS_PREFIX_NEWER JANUS_BUILD_ERROR_NEWER
cd "$root"
exec python3 -m pytest -q -p no:cacheprovider tests "$@"
