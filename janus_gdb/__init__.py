"""janus-gdb: find who holds which lock in a hung Janus (or any glib/pthread program).

Load it in gdb with ``source /path/to/gdbinit.py``; then ``help janus-waitgraph``.
Nothing runs at import time: ``register()`` creates the commands.
"""

__version__ = "0.1.0"


def register():
    """Register janus-gdb's commands with gdb (idempotent)."""
    from . import commands
    return commands.register()
