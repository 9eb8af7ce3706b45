"""Load janus-gdb into gdb: ``source /path/to/gdbinit.py`` (safe to source twice)."""
import os
import sys

_here = os.path.dirname(os.path.abspath(os.path.expanduser(__file__)))
if _here not in sys.path:
    sys.path.insert(0, _here)

import janus_gdb  # noqa: E402

janus_gdb.register()
