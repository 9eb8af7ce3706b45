"""drgn's all-thread stack walk of a core, the bar of issue 14.

    DRGN_PYTHON bench/drgnwalk.py CORE EXE

Run by bench/run.py with the Python of a venv that has drgn (the benchmark
makes one in bench/.build/drgn-venv when it can).  Loads CORE with EXE's
debug info (and the default search for the libraries), then walks every
thread's stack and reads each frame's function name: what a drgn user does
to see the stacks.  Prints one JSON line: threads, frames, named frames,
seconds to load and to walk.  Not part of janus-gdb; never imported by it.
"""

import json
import sys
import time

import drgn  # pylint: disable=import-error


def main():
    core, exe = sys.argv[1], sys.argv[2]
    t0 = time.monotonic()
    prog = drgn.Program()
    prog.set_core_dump(core)
    try:
        prog.load_debug_info([exe], default=True)
    except drgn.MissingDebugInfoError:
        pass  # libraries without debug info: their symbol tables still name frames
    t1 = time.monotonic()
    threads = frames = named = failed = 0
    for thread in prog.threads():
        threads += 1
        try:
            trace = prog.stack_trace(thread.tid)
        except (drgn.FaultError, ValueError, LookupError):
            failed += 1
            continue
        for frame in trace:
            frames += 1
            try:
                name = frame.name
            except (drgn.FaultError, ValueError, LookupError):
                name = None
            if name is None:
                try:
                    name = frame.symbol().name
                except LookupError:
                    name = None
            if name:
                named += 1
    t2 = time.monotonic()
    print(json.dumps({"threads": threads, "frames": frames, "named": named,
                      "failed": failed, "load": t1 - t0, "walk": t2 - t1}))


if __name__ == "__main__":
    main()
