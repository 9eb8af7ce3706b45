"""Time the static lock analysis (``janus-gdb lockorder``) on a C tree, cold
(empty per-file cache) and warm (every file from the cache).

    python3 bench/lockorder.py [SRC_DIR]

SRC_DIR defaults to the Janus source the tests use
(~/.cache/janus-gdb/janus-1.1.2.src/src).  The cold run uses a fresh
temporary cache, so the user's cache is neither used nor changed.
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.csource import lockorder  # noqa: E402

DEFAULT = os.path.expanduser("~/.cache/janus-gdb/janus-1.1.2.src/src")


def main(argv):
    src = argv[1] if len(argv) > 1 else DEFAULT
    if not os.path.isdir(src):
        sys.stderr.write("no such directory: %s\n" % src)
        return 2
    tmp = tempfile.mkdtemp(prefix="lockorder-bench-")
    os.environ["XDG_CACHE_HOME"] = tmp
    try:
        t0 = time.time()
        cold = lockorder.analyze([src])
        t1 = time.time()
        warm = lockorder.analyze([src])
        t2 = time.time()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s = cold.stats
    print("%s: %d files, %d lines, %d functions, %d lock acquisitions"
          % (src, s["files"], s["lines"], s["functions"], s["acquisitions"]))
    print("cold (no cache): %.2f s   warm (%d/%d files cached): %.2f s   findings: %d"
          % (t1 - t0, warm.stats["files_cached"], warm.stats["files"], t2 - t1,
             len(warm.findings)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
