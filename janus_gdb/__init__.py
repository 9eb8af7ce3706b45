"""janus-gdb: find who holds which lock in a hung Janus (or any glib/pthread program).

Load it in gdb with ``source /path/to/gdbinit.py``; then ``help janus-waitgraph``.
Nothing runs at import time: ``register()`` creates the commands, the lock
pretty-printers and the ``bt`` annotations (``set janus-annotate on|off``).
"""

__version__ = "0.1.0"


def register():
    """Register janus-gdb's commands, printers and frame filter with gdb
    (idempotent: sourcing gdbinit.py twice replaces, never duplicates).

    A part that fails to register (an old gdb without its API) does not
    stop the others."""
    from .gdbui import commands
    made = commands.register()
    for name in ("printers", "annotate"):
        try:
            module = __import__("%s.gdbui.%s" % (__name__, name), fromlist=["register"])
            module.register()
        except Exception as exc:  # pylint: disable=broad-except  # one line, no traceback
            import gdb  # pylint: disable=import-error
            gdb.write("janus-gdb: %s not available in this gdb: %s\n" % (name, exc))
    return made
