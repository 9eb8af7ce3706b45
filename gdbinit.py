"""Load janus-gdb into gdb: ``source /path/to/gdbinit.py`` (safe to source twice)."""
import os
import sys


def _janus_gdb_dir():
    """This file's directory.  The code object's file name is right also
    when this file is sourced from another Python script (gdb then leaves
    ``__file__`` to the outer script)."""
    for path in (sys._getframe(0).f_code.co_filename, globals().get("__file__")):
        if path and os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(path)),
                                                "janus_gdb", "__init__.py")):
            return os.path.dirname(os.path.abspath(path))
    return os.path.dirname(os.path.abspath(os.path.expanduser(__file__)))


_here = _janus_gdb_dir()
if _here not in sys.path:
    sys.path.insert(0, _here)

import janus_gdb  # noqa: E402

janus_gdb.register()
