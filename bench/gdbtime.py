"""Running gdb for the benchmarks: wall time, peak RSS, and the duration of
commands inside gdb (stdlib only, Python 3.6+)."""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time

MARK = "JANUS_GDB_TIME"

# gdb runs as installed software does: Python may keep janus-gdb's bytecode
# cache (pip compiles it at install time), so no measured run pays for
# compiling the package (some environments set PYTHONDONTWRITEBYTECODE).
ENV = dict((k, v) for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE")


def timed(label, cmd):
    """gdb -ex arguments that run gdb command CMD and print its duration
    (monotonic clock) on stderr, tagged LABEL."""
    return ["-ex", "python import time as _jg_t; _jg_t0 = _jg_t.monotonic()",
            "-ex", cmd,
            "-ex", "python import sys as _jg_s; _jg_s.stderr.write('%s %s %%.6f\\n' %% "
                   "(_jg_t.monotonic() - _jg_t0)); _jg_s.stderr.flush()" % (MARK, label)]


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def kill_group(proc, timeout=30):
    """SIGKILL the process group of PROC (a Popen started with
    start_new_session) if it still runs, and reap it (bounded)."""
    if proc.poll() is None:
        _killpg(proc.pid)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def run_gdb(args, children, stdout_path=None, timeout=3600):
    """Run gdb ARGS (registered in the list CHILDREN while it runs, so an
    exit handler can kill it); returns dict(wall, rss_kib, times {label:
    seconds}, rc, stdout, stderr, start, end)."""
    return run_timed(["gdb"] + args, children, stdout_path, timeout)


def run_timed(argv, children, stdout_path=None, timeout=3600, cwd=None):
    """run_gdb for any command ARGV (e.g. drgn's Python, or janus-gdb's
    command-line tool, which runs gdb as its child: ru_maxrss from wait4()
    is then the largest of the process and its reaped descendants, i.e.
    gdb's), run in directory CWD (default: this one)."""
    out = open(stdout_path, "w") if stdout_path else open(os.devnull, "w")
    err = tempfile.TemporaryFile(mode="w+")
    try:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             start_new_session=True, env=ENV, cwd=cwd)
        children.append(p)
        killer = threading.Timer(timeout, _killpg, (p.pid,))
        killer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
        wall = time.monotonic() - t0
        p.returncode = (status >> 8) if os.WIFEXITED(status) else -(status & 0x7f)
        children.remove(p)
        err.seek(0)
        errtext = err.read()
    finally:
        out.close()
        err.close()
    times = dict((m.group(1), float(m.group(2)))
                 for m in re.finditer(r"^%s (\S+) ([0-9.]+)$" % MARK, errtext, re.M))
    stdout = None
    if stdout_path:
        with open(stdout_path, errors="replace") as f:
            stdout = f.read()
    return {"wall": wall, "rss_kib": ru.ru_maxrss, "times": times, "rc": p.returncode,
            "stdout": stdout, "stderr": errtext, "start": t0, "end": t0 + wall}
