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
status=0
python3 -m pytest -q -p no:cacheprovider tests "$@" || status=$?
# The fixture tests again on an old userland (Debian bullseye: gdb 10.1,
# Python 3.9, gcc 10, glibc 2.31, glib 2.66), everything inside a chroot
# (scripts/old-userland, tests/gdbrun.py JANUS_GDB_TEST_ROOT).  Only for a
# whole run (no arguments) as root (debootstrap, chroot, mount);
# JANUS_GDB_OLD_USERLAND=off leaves it out.
if [ $# -eq 0 ] && [ "${JANUS_GDB_OLD_USERLAND:-on}" != off ] && [ "$(id -u)" != 0 ]; then
  echo "run.sh: not root: the bullseye pass (scripts/old-userland) did not run" >&2
elif [ $# -eq 0 ] && [ "${JANUS_GDB_OLD_USERLAND:-on}" != off ]; then
  echo "== the same fixture tests on Debian bullseye's gdb 10.1 / Python 3.9 (chroot)"
  if old_root=$(bash "$root/scripts/old-userland") && old_root=$(printf '%s\n' "$old_root" | tail -n 1) \
      && [ -n "$old_root" ] && [ "$old_root" != / ] && [ -x "$old_root/usr/bin/gdb" ]; then
    JANUS_GDB_TEST_ROOT=$old_root python3 -m pytest -q -p no:cacheprovider \
      $(grep -v "^#" "$root/tests/old-userland.txt") || status=$?
  else
    echo "run.sh: the old userland could not be built (scripts/old-userland's message" \
         "is above); its tests did not run" >&2
    status=1
  fi
fi
exit $status
