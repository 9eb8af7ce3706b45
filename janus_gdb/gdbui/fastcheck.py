"""The fast path checked against gdb (for the test suite and for anyone who
doubts a report): with ``JANUS_GDB_FAST_CHECK=FILE`` in the environment,
every analysis of a core where the fast path copied threads is done a
second time reading every thread through gdb (``--gdb-only``), and the two
reports are compared field by field as JSON.  One JSON line per analysis is
appended to FILE: the core, the threads read and copied, and the first
difference or null.  tests/conftest.py sets it for every test and fails a
test whose analysis differed.
"""

import json
import os

ENV = "JANUS_GDB_FAST_CHECK"
# where the reports may differ without the analysis differing: the time
# the source check took and whether its cache answered
VOLATILE = frozenset(("seconds", "cached"))


def wanted():
    return bool(os.environ.get(ENV))


def check(report, collect_gdb_only, inf=None):
    """Compare REPORT (fast path) with COLLECT_GDB_ONLY()'s and log the
    result, when asked for and the fast path copied threads."""
    from ..analysis import fastpath     # gdb's: first_difference is used without it
    from ..report import json as render_json
    from ..target import gdbtarget
    path = os.environ.get(ENV)
    stats = fastpath.LAST[0]
    if not path or not stats or not stats.get("copied"):
        return
    other = collect_gdb_only()
    fastpath.LAST[0] = stats    # what the fast path did, not the check
    diff = first_difference(render_json.to_dict(report, ""), render_json.to_dict(other, ""))
    skipped = None
    if inf is not None and gdbtarget.target_kind(inf) == "live":
        gone = gdbtarget.process_gone(inf)
        if gone:
            # killed between the two analyses: the second one read another target
            skipped, diff = "the process ended during the check: %s" % gone, None
    line = {"core": gdbtarget.core_path(inf) if inf is not None else None,
            "threads": stats.get("threads"), "read": stats.get("read"),
            "copied": stats.get("copied"), "difference": diff, "skipped": skipped}
    try:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")
    except OSError:
        pass


def first_difference(a, b, where="", limit=200):
    """'path: fast != gdb-only' of the first difference of A and B, or None."""
    if type(a) is not type(b):
        return "%s: %s != %s" % (where or "/", repr(a)[:limit], repr(b)[:limit])
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key in VOLATILE:
                continue
            if key not in a or key not in b:
                return "%s/%s: only in the %s report" % (where, key,
                                                         "fast" if key in a else "gdb-only")
            got = first_difference(a[key], b[key], "%s/%s" % (where, key), limit)
            if got:
                return got
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            got = first_difference(x, y, "%s[%d]" % (where, i), limit)
            if got:
                return got
        if len(a) != len(b):
            return "%s: %d items != %d" % (where or "/", len(a), len(b))
        return None
    if a != b:
        return "%s: %s != %s" % (where or "/", repr(a)[:limit], repr(b)[:limit])
    return None
