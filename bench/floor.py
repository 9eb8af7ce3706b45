"""The floor of any gdb Python extension that looks at every thread's stack:
`janus-bench-floor` lists the threads, selects each one and unwinds it to
the bottom (gdb.newest_frame, Frame.older), nothing more: no symbol, line,
register or variable lookups, no analysis.  It reads the threads in batches
inside nested gdb commands and under the same gdb settings as
janus-waitgraph, so the difference between the two is what janus-gdb's own
work costs.  Loaded with `-x bench/floor.py` after gdbinit.py; used by
bench/run.py (column F)."""

import gdb  # pylint: disable=import-error

from janus_gdb.gdbui import commands

BATCH = 100
_STATE = {}


def _run_batch():
    frames = 0
    for th in _STATE["batch"]:
        th.switch()
        frame = gdb.newest_frame()
        while frame is not None:
            frames += 1
            frame = frame.older()
    _STATE["frames"] += frames


class Floor(gdb.Command):
    """janus-bench-floor: list, select and unwind every thread (benchmark floor)."""

    def __init__(self):
        super(Floor, self).__init__("janus-bench-floor", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        with commands.Settings():
            threads = sorted(gdb.selected_inferior().threads(), key=lambda t: t.num)
            _STATE["frames"] = 0
            for start in range(0, len(threads), BATCH):
                _STATE["batch"] = threads[start:start + BATCH]
                gdb.execute("python __import__('sys').modules[%r]._run_batch()" % __name__,
                            to_string=True)
        gdb.write("floor: %d threads, %d frames\n" % (len(threads), _STATE["frames"]))


Floor()
