#!/usr/bin/env python3
"""janus-gdb on a real Janus at scale: janus-waitgraph vs gdb's `thread apply all bt`.

    python3 bench/janus_scale.py [--handles 1000] [--waiters 200] [--sessions 4]
                                 [--runs 3] [--stack-kib 256] [--no-live]
                                 [--no-profile] [--keep] [--json FILE]
                                 [--drgn auto|off|PYTHON]

Starts the Janus 1.1.2 debug build of scripts/build-janus (JANUS_PREFIX, or
~/.cache/janus-gdb/janus-1.1.2) on 127.0.0.1 with a small thread stack
(RLIMIT_STACK, default 256 KiB) and MALLOC_ARENA_MAX=2, attaches --handles
VideoRoom handles over --sessions sessions (one "hloop" thread each;
session_timeout 0), freezes one "list" request inside rooms_mutex (it sleeps
in pause(2) holding the lock, no debugger attached) and piles --waiters more
behind it, then takes a core (tests/janusd.py: ScaleSetup).  Then, with the
same gdb, interleaved, --runs times each:

  core  A  gdb -nx -batch JANUS -c CORE -x gdbinit.py -ex janus-waitgraph
        B  gdb -nx -batch JANUS -c CORE -ex 'thread apply all bt'   (stdout to /dev/null)
        S  gdb -nx -batch JANUS -c CORE -x gdbinit.py               (start-up + core load)
        J  python3 -m janus_gdb CORE --exe JANUS   (the command-line tool's full report,
           run from the repository root, so this tree's package; its gdb is its
           child, RSS is the largest of the two; exit status must be 3, a hang)
        D  drgn's all-thread stack walk with function names (bench/drgnwalk.py,
           the bar of issue 14), when drgn can be had (--drgn, as bench/run.py:
           auto = bench/.build/drgn-venv, made with pip when missing; off; or a
           Python that imports drgn), else left out, saying why
  live  A  gdb -nx -batch JANUS -x gdbinit.py -ex 'attach PID' -ex janus-waitgraph -ex detach
        B  gdb -nx -batch JANUS -ex 'attach PID' -ex 'thread apply all bt' -ex detach

Wall time and peak RSS of each gdb come from os.wait4(); A' and B' are the
command alone, timed inside gdb.  Before the measured runs, one unmeasured
A run also prints what the fast path did (janus_gdb.analysis.fastpath.LAST:
threads, groups, how many threads gdb read and how many were copied, and
why groups were refused), on the core (warming the page cache and the
bytecode cache for all) and, before the live runs, on the live Janus.  For the live target, "stopped" is measured
twice: inside gdb (monotonic clock from before `attach` to after `detach`)
and from outside (a sampler reading /proc/PID/task/PID/stat every 2 ms: the
longest run of the main thread in tracing stop, state 't').  A's report is
checked each time (verdict, the waiters in one group, the holder named), and
J's report and exit status too, so the numbers are for a correct analysis.  Finally janus-waitgraph runs under
cProfile inside gdb on the core; the top 30 functions by cumulative and by
own time are printed.

Everything talks to 127.0.0.1 only; every loop is bounded.  Stdlib only,
Python 3.6+.  The Janus is killed and the core removed at exit (--keep
keeps the work directory).
"""

import argparse
import atexit
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GDBINIT = os.path.join(ROOT, "gdbinit.py")
sys.path.insert(0, os.path.join(ROOT, "tests"))

import janusd  # noqa: E402
import gdbtime  # noqa: E402  (bench/, next to this file)
import run as pileup_bench  # noqa: E402  (bench/run.py: J's command line, drgn's helpers)

FASTPATH_STATS = ("python import janus_gdb.analysis.fastpath as _js_f; "
                  "print('JANUS_SCALE_FASTPATH %r' % (_js_f.LAST[0],))")

GDB_BASE = ["-nx", "-batch", "-iex", "set pagination off", "-iex", "set width 0",
            "-iex", "set confirm off"]

_children = []
_cleanup = {"setup": None, "workdir": None, "keep": False}


def log(msg):
    sys.stderr.write("[janus-scale %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def _at_exit():
    for p in _children:
        if p.poll() is None:
            gdbtime.kill_group(p)
    s = _cleanup["setup"]
    if s is not None:
        s.close(remove_core=not _cleanup["keep"])
    if _cleanup["workdir"] and not _cleanup["keep"]:
        shutil.rmtree(_cleanup["workdir"], ignore_errors=True)


atexit.register(_at_exit)


# ---------------------------------------------------------------- running gdb

def timed(label, cmd):
    """gdb -ex arguments that run CMD and print its duration (monotonic) on stderr."""
    return gdbtime.timed(label, cmd)


def run_gdb(args, stdout_path=None, timeout=900):
    """gdb ARGS; dict(wall, rss_kib, times {label: seconds}, rc, stdout, stderr)."""
    return gdbtime.run_gdb(args, _children, stdout_path, timeout)


class StopSampler(object):
    """Samples the state of one thread of PID every STEP seconds (from
    /proc, without touching the target); longest() is the longest run of
    tracing stop ('t') seen between start() and stop()."""

    def __init__(self, pid, lwp=None, step=0.002):
        self.path = "/proc/%d/task/%d/stat" % (pid, lwp or pid)
        self.step = step
        self.runs = []
        self._stop = threading.Event()
        self._thread = None

    def _state(self):
        try:
            with open(self.path) as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None

    def _loop(self, limit):
        began = None
        deadline = time.monotonic() + limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            st = self._state()
            if st in ("t", "T"):
                if began is None:
                    began = now
            elif began is not None:
                self.runs.append(now - began)
                began = None
            time.sleep(self.step)
        if began is not None:
            self.runs.append(time.monotonic() - began)

    def start(self, limit=900):
        self._thread = threading.Thread(target=self._loop, args=(limit,))
        self._thread.daemon = True
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        return max(self.runs) if self.runs else 0.0


# ---------------------------------------------------------------- checks

def check_report(text, setup):
    """Problems in janus-waitgraph's text report, [] when it is right."""
    if not text:
        return ["no report"]
    st = setup.stall
    n = len(st.waiters)
    problems = []
    m = re.search(r"^(Found \d+ deadlocks?|No deadlock found).*$", text, re.M)
    if not m or not m.group(0).startswith("No deadlock found"):
        problems.append("verdict: %r" % (m.group(0) if m else None))
    g = re.search(r"^\s+([\d,]+) threads wait for M\d+ janus_videoroom\.c: rooms_mutex "
                  r"\(held by T\d+\)", text, re.M)
    if not g or int(g.group(1).replace(",", "")) != n:
        problems.append("no group of %d waiters on janus_videoroom.c: rooms_mutex" % n)
    if not re.search(r"^Blocked behind T\d+ \(LWP %d\)" % st.frozen_lwp, text, re.M):
        problems.append("holder LWP %d not named" % st.frozen_lwp)
    if "locked at janus_videoroom.c:%d" % st.lock_line not in text:
        problems.append("owner evidence does not cite janus_videoroom.c:%d" % st.lock_line)
    return problems


def extract_report(stdout):
    m = re.search(r"^(Found \d+ deadlocks?|No deadlock found).*", stdout or "", re.M | re.S)
    return m.group(0) if m else None


def check_cli(r, setup):
    """Problems of one J run: its report and its exit status (a hang)."""
    # the frozen request sleeps in pause(2) holding rooms_mutex: a hang (3)
    return (["J: " + p for p in check_report(extract_report(r["stdout"]), setup)]
            + pileup_bench.cli_status_problems(r))


def run_cli(exe, core, stdout_path):
    """One timed `janus-gdb CORE --exe EXE` (run_gdb's dict), from ROOT."""
    return gdbtime.run_timed(pileup_bench.cli_args(exe, core), _children, stdout_path,
                             cwd=ROOT)


def run_drgn(python, exe, core, workdir):
    """One timed drgn walk (bench/run.py's), its output kept in WORKDIR."""
    return pileup_bench.run_drgn(python, exe, core, workdir)


def fastpath_stats(setup, workdir, live=False):
    """One unmeasured A run (on the core, or attached to the live Janus)
    that prints fastpath.LAST[0] after the report: (the dict or None,
    problems)."""
    out = os.path.join(workdir, "report-fastpath-%s.txt" % ("live" if live else "core"))
    target = (["-ex", "attach %d" % setup.janus.pid] if live else ["-c", setup.core])
    r = run_gdb(GDB_BASE + [setup.janus.exe] + (["-x", GDBINIT] + target if live
                                                else target + ["-x", GDBINIT])
                + ["-ex", "janus-waitgraph", "-ex", FASTPATH_STATS]
                + (["-ex", "detach"] if live else []), stdout_path=out)
    probs = ["fast-path run%s: %s" % (" (live)" if live else "", p)
             for p in check_report(extract_report(r["stdout"]), setup)]
    m = re.search(r"^JANUS_SCALE_FASTPATH (.*)$", r["stdout"] or "", re.M)
    stats = None
    if m:
        try:
            import ast
            stats = ast.literal_eval(m.group(1))
        except (ValueError, SyntaxError):
            probs.append("fast-path run: cannot read %r" % m.group(1)[:200])
    else:
        probs.append("fast-path run printed no statistics: rc %s, %s"
                     % (r["rc"], r["stderr"].strip()[-300:]))
    return stats, probs


# ---------------------------------------------------------------- measurements

def bench_core(setup, runs, workdir, nthreads, drgn=None):
    exe, core = setup.janus.exe, setup.core
    base = GDB_BASE + [exe, "-c", core]
    args = {"A": base + ["-x", GDBINIT] + timed("cmd", "janus-waitgraph"),
            "B": base + timed("cmd", "thread apply all bt"),
            "S": base + ["-x", GDBINIT]}
    report = os.path.join(workdir, "report-core.txt")
    cli_report = os.path.join(workdir, "report-cli.txt")
    res = {"A": [], "B": [], "S": [], "J": [], "D": [], "problems": []}
    # unmeasured: what the fast path did (and the caches warm for all)
    stats, probs = fastpath_stats(setup, workdir)
    res["fastpath"] = stats
    res["problems"] += probs
    log("fast path: %s" % (stats,))
    run_gdb(args["B"])
    run_cli(exe, core, None)
    if drgn:
        run_drgn(drgn, exe, core, workdir)
    for i in range(runs):
        for key in ("A", "B", "S", "J", "D"):
            if key == "J":
                r = run_cli(exe, core, cli_report)
                probs = check_cli(r, setup)
                res["problems"] += [p for p in probs if p not in res["problems"]]
                res["cli_report_lines"] = len((extract_report(r["stdout"]) or "").splitlines())
                r.pop("stdout")
                r.pop("stderr")
                res["J"].append(r)
                continue
            if key == "D":
                if not drgn:
                    continue
                r = run_drgn(drgn, exe, core, workdir)
                w = r["walk"]
                if r["rc"] != 0 or w is None or w["threads"] < nthreads:
                    p = ("D: drgn walk failed or saw too few threads: rc %s, %s, %s"
                         % (r["rc"], w, r["drgn_stderr"][-200:]))
                    if p not in res["problems"]:
                        res["problems"].append(p)
                else:
                    res["D"].append(r)
                continue
            r = run_gdb(args[key], stdout_path=report if key == "A" else None)
            if key == "A":
                probs = check_report(extract_report(r["stdout"]), setup)
                if r["rc"] != 0 or "Traceback" in r["stderr"]:
                    probs.append("gdb rc %s: %s" % (r["rc"], r["stderr"][-500:]))
                res["problems"] += [p for p in probs if p not in res["problems"]]
                res["report_lines"] = len((extract_report(r["stdout"]) or "").splitlines())
            r.pop("stdout")
            r.pop("stderr")
            res[key].append(r)
        a, b, s, j = res["A"][-1], res["B"][-1], res["S"][-1], res["J"][-1]
        d = ("  D %.2fs (load %.2fs, walk %.2fs, %d frames, %d MiB)"
             % (res["D"][-1]["wall"], res["D"][-1]["walk"]["load"],
                res["D"][-1]["walk"]["walk"], res["D"][-1]["walk"]["frames"],
                res["D"][-1]["rss_kib"] >> 10)) if len(res["D"]) == i + 1 else ""
        log("core run %d: A %.2fs (cmd %.2fs, %d MiB)  B %.2fs (cmd %.2fs, %d MiB)  S %.2fs (%d MiB)"
            "  J %.2fs (rc %s, %d MiB)%s"
            % (i + 1, a["wall"], a["times"].get("cmd", -1), a["rss_kib"] >> 10,
               b["wall"], b["times"].get("cmd", -1), b["rss_kib"] >> 10,
               s["wall"], s["rss_kib"] >> 10, j["wall"], j["rc"], j["rss_kib"] >> 10, d))
    return res


def bench_live(setup, runs, workdir):
    j = setup.janus
    pid = j.pid
    attach = ["-ex", "python import time as _js_t; _js_a0 = _js_t.monotonic()",
              "-ex", "attach %d" % pid]
    detach = ["-ex", "detach",
              "-ex", "python import sys as _js_s; _js_s.stderr.write('%s stopped %%.6f\\n' %% "
                     "(_js_t.monotonic() - _js_a0)); _js_s.stderr.flush()" % gdbtime.MARK]
    args = {"A": GDB_BASE + [j.exe, "-x", GDBINIT] + attach + timed("cmd", "janus-waitgraph")
            + detach,
            "B": GDB_BASE + [j.exe] + attach + timed("cmd", "thread apply all bt") + detach}
    report = os.path.join(workdir, "report-live.txt")
    res = {"A": [], "B": [], "problems": []}
    # unmeasured: what the fast path did on the live process
    stats, probs = fastpath_stats(setup, workdir, live=True)
    res["fastpath"] = stats
    res["problems"] += probs
    log("fast path (live): %s" % (stats,))
    for i in range(runs):
        for key in ("A", "B"):
            if not janusd.wait_until(lambda: j.futex_waiters(setup.stall.rooms_mutex)
                                     == setup.stall.waiters, 30, step=0.2):
                res["problems"].append("the pile-up changed before live run %d %s" % (i + 1, key))
            time.sleep(0.2)
            sampler = StopSampler(pid)
            sampler.start()
            time.sleep(0.05)
            r = run_gdb(args[key], stdout_path=report if key == "A" else None)
            time.sleep(0.05)
            r["stopped_outside"] = sampler.stop()
            r["stopped_inside"] = r["times"].get("stopped")
            if key == "A":
                probs = check_report(extract_report(r["stdout"]), setup)
                if r["rc"] != 0 or "Traceback" in r["stderr"]:
                    probs.append("gdb rc %s: %s" % (r["rc"], r["stderr"][-500:]))
                res["problems"] += [p for p in probs if p not in res["problems"]]
            r.pop("stdout")
            r.pop("stderr")
            res[key].append(r)
        a, b = res["A"][-1], res["B"][-1]
        log("live run %d: A stopped %.2fs in gdb / %.2fs from /proc (gdb %.2fs, %d MiB)  "
            "B stopped %.2fs / %.2fs (gdb %.2fs, %d MiB)"
            % (i + 1, a["stopped_inside"] or -1, a["stopped_outside"], a["wall"],
               a["rss_kib"] >> 10, b["stopped_inside"] or -1, b["stopped_outside"], b["wall"],
               b["rss_kib"] >> 10))
    if not j.alive() or j.futex_waiters(setup.stall.rooms_mutex) != setup.stall.waiters:
        res["problems"].append("the target is no longer in its hung state after the live runs")
    return res


PROFILE = ('python import cProfile, pstats; '
           'cProfile.run("gdb.execute(\\"janus-waitgraph\\", to_string=True)", %r); '
           'pstats.Stats(%r).sort_stats("cumulative").print_stats(30); '
           'pstats.Stats(%r).sort_stats("tottime").print_stats(30)')


def profile(setup, workdir):
    prof = os.path.join(workdir, "waitgraph.prof")
    out = os.path.join(workdir, "profile.txt")
    r = run_gdb(GDB_BASE + [setup.janus.exe, "-c", setup.core, "-x", GDBINIT,
                            "-ex", PROFILE % (prof, prof, prof)], stdout_path=out)
    with open(out, errors="replace") as f:
        text = f.read()
    i = text.find("function calls")
    return (text[max(0, text.rfind("\n", 0, i)):] if i >= 0 else text + r["stderr"][-2000:]), r


# ---------------------------------------------------------------- summary

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratios(a, b, key):
    return [x[key] / y[key] for x, y in zip(a, b) if x.get(key) and y.get(key)]


def fmt(x, spec="%.2f"):
    return "-" if x is None else spec % x


def table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows)


def summarize(core, live):
    A, B, S = core["A"], core["B"], core["S"]
    summary = {
        "core": {
            "A_wall": med(x["wall"] for x in A), "B_wall": med(x["wall"] for x in B),
            "S_wall": med(x["wall"] for x in S),
            "A_cmd": med(x["times"].get("cmd") for x in A),
            "B_cmd": med(x["times"].get("cmd") for x in B),
            "A_rss_mib": med(x["rss_kib"] for x in A) / 1024.0,
            "B_rss_mib": med(x["rss_kib"] for x in B) / 1024.0,
            "S_rss_mib": med(x["rss_kib"] for x in S) / 1024.0,
            "ratio_wall": med(ratios(A, B, "wall")),
            "ratio_rss": med(ratios(A, B, "rss_kib")),
            "ratio_cmd": med([a["times"]["cmd"] / b["times"]["cmd"] for a, b in zip(A, B)
                              if a["times"].get("cmd") and b["times"].get("cmd")]),
            "problems": core["problems"], "report_lines": core.get("report_lines"),
            "cli_report_lines": core.get("cli_report_lines"),
            "fastpath": core.get("fastpath"),
        }}
    c = summary["core"]
    J, D = core.get("J") or [], core.get("D") or []
    c["J_wall"] = med(x["wall"] for x in J)
    c["J_rss_mib"] = med(x["rss_kib"] for x in J) / 1024.0 if J else None
    c["D_wall"] = med(x["wall"] for x in D)
    c["D_rss_mib"] = med(x["rss_kib"] for x in D) / 1024.0 if D else None
    c["D_load"] = med(x["walk"]["load"] for x in D)
    c["D_walk"] = med(x["walk"]["walk"] for x in D)
    # issue 14's figures, as bench/run.py computes them: ratios of medians
    c["J_over_D"] = c["J_wall"] / c["D_wall"] if c["J_wall"] and c["D_wall"] else None
    c["A_over_D"] = c["A_wall"] / c["D_wall"] if c["D_wall"] else None
    c["A_cmd_over_B_cmd"] = c["A_cmd"] / c["B_cmd"] if c["A_cmd"] and c["B_cmd"] else None
    c["rss_J_over_B"] = c["J_rss_mib"] / c["B_rss_mib"] if c["J_rss_mib"] else None
    if live:
        LA, LB = live["A"], live["B"]
        summary["live"] = {
            "A_stopped_inside": med(x["stopped_inside"] for x in LA),
            "B_stopped_inside": med(x["stopped_inside"] for x in LB),
            "A_stopped_outside": med(x["stopped_outside"] for x in LA),
            "B_stopped_outside": med(x["stopped_outside"] for x in LB),
            "A_wall": med(x["wall"] for x in LA), "B_wall": med(x["wall"] for x in LB),
            "A_cmd": med(x["times"].get("cmd") for x in LA),
            "B_cmd": med(x["times"].get("cmd") for x in LB),
            "A_rss_mib": med(x["rss_kib"] for x in LA) / 1024.0,
            "B_rss_mib": med(x["rss_kib"] for x in LB) / 1024.0,
            "ratio_stopped_inside": med(ratios(LA, LB, "stopped_inside")),
            "ratio_stopped_outside": med(ratios(LA, LB, "stopped_outside")),
            "ratio_rss": med(ratios(LA, LB, "rss_kib")),
            "problems": live["problems"], "fastpath": live.get("fastpath"),
        }
    return summary


def print_fastpath(where, fp):
    """One line: what the fast path did in the unmeasured run on WHERE."""
    if fp and "read" in fp:
        why = fp.get("why") or {}
        if isinstance(why, dict):
            why = ", ".join("%s (%d threads)" % kv for kv in sorted(why.items())) or "none"
        roles = fp.get("roles")
        roles = (" (role objects read from: %s)"
                 % ", ".join("%s %d" % kv for kv in sorted(roles.items()))) if roles else ""
        print("fast path (janus-waitgraph on the %s): %s threads, %s groups; gdb read %s, "
              "copied %s%s; refused: %s"
              % (where, "{:,}".format(fp["threads"]), "{:,}".format(fp["groups"]),
                 "{:,}".format(fp["read"]), "{:,}".format(fp["copied"]), roles, why))
    else:
        print("fast path (janus-waitgraph on the %s): not used: %r" % (where, fp))


def print_summary(summary, runs, info):
    c = summary["core"]
    print()
    print("Real Janus 1.1.2: %s threads (%s hloop), %s requests on rooms_mutex; core %d MiB"
          % ("{:,}".format(info["threads"]), "{:,}".format(info["hloops"]),
             "{:,}".format(info["waiters"]), info["core_bytes"] >> 20))
    print("Median of %d interleaved runs (ratios: median of the per-run A/B ratios)." % runs)
    print()
    rows = [("core file", "A janus-waitgraph", "B thread apply all bt", "A/B", "S load only",
             "J janus-gdb CORE", "D drgn walk")]
    rows.append(("gdb wall s", fmt(c["A_wall"]), fmt(c["B_wall"]), fmt(c["ratio_wall"]),
                 fmt(c["S_wall"]), fmt(c["J_wall"]), fmt(c["D_wall"])))
    rows.append(("command alone s", fmt(c["A_cmd"]), fmt(c["B_cmd"]), fmt(c["ratio_cmd"]), "-",
                 "-", "-" if c["D_walk"] is None else "walk %.2f" % c["D_walk"]))
    rows.append(("gdb peak RSS MiB", fmt(c["A_rss_mib"], "%.0f"), fmt(c["B_rss_mib"], "%.0f"),
                 fmt(c["ratio_rss"]), fmt(c["S_rss_mib"], "%.0f"), fmt(c["J_rss_mib"], "%.0f"),
                 fmt(c["D_rss_mib"], "%.0f")))
    print(table(rows))
    print("(J: wall of `python3 -m janus_gdb CORE --exe JANUS`, RSS its gdb's; D: drgn's "
          "Python, %s)" % ("load %s s + walk" % fmt(c["D_load"]) if c["D_wall"] else info["drgn"]))
    print_fastpath("core", c.get("fastpath"))
    if "live" in summary:
        l = summary["live"]
        print()
        rows = [("live process", "A janus-waitgraph", "B thread apply all bt", "A/B")]
        rows.append(("stopped s (gdb: attach..detach)", fmt(l["A_stopped_inside"]),
                     fmt(l["B_stopped_inside"]), fmt(l["ratio_stopped_inside"])))
        rows.append(("stopped s (/proc: state t)", fmt(l["A_stopped_outside"]),
                     fmt(l["B_stopped_outside"]), fmt(l["ratio_stopped_outside"])))
        rows.append(("command alone s", fmt(l["A_cmd"]), fmt(l["B_cmd"]), "-"))
        rows.append(("gdb wall s", fmt(l["A_wall"]), fmt(l["B_wall"]), "-"))
        rows.append(("gdb peak RSS MiB", fmt(l["A_rss_mib"], "%.0f"), fmt(l["B_rss_mib"], "%.0f"),
                     fmt(l["ratio_rss"])))
        print(table(rows))
        print_fastpath("live process", l.get("fastpath"))
    print()
    print("Targets (issue 4): time ratio <= 0.8, RSS ratio <= 1.2.")

    def verdict(what, x, limit):
        if x is None:
            return "%s -" % what
        return "%s %.2f %s" % (what, x, "met" if x <= limit else "NOT met")
    verdicts = [verdict("core time", c["ratio_wall"], 0.8),
                verdict("core RSS", c["ratio_rss"], 1.2)]
    if "live" in summary:
        l = summary["live"]
        verdicts += [verdict("live stopped", l["ratio_stopped_inside"], 0.8),
                     verdict("live RSS", l["ratio_rss"], 1.2)]
    print("  " + "; ".join(verdicts))
    print("Targets (issue 14): J/D <= 1.5 (J = janus-gdb CORE, D = drgn's stack walk); "
          "A' <= 0.3x B'; RSS J <= RSS B.  [A/D: the in-gdb command's, for comparison.]")
    v14 = []
    if c["J_over_D"] is not None:
        v14.append(verdict("J/D", c["J_over_D"], 1.5))
    else:
        v14.append("J/D - (%s)" % ("no D: %s" % info["drgn"] if c["D_wall"] is None else "no J"))
    v14.append(verdict("A'/B'", c["A_cmd_over_B_cmd"], 0.3))
    v14.append(verdict("RSS J/B", c["rss_J_over_B"], 1.0))
    extra = "  [A/D %s]" % fmt(c["A_over_D"]) if c["A_over_D"] is not None else ""
    print("  " + "; ".join(v14) + extra)
    problems = c["problems"] + (summary.get("live", {}).get("problems") or [])
    print("  report: %s (%s lines of text; J's %s)"
          % ("ok" if not problems else "WRONG: " + "; ".join(problems), c.get("report_lines"),
             c.get("cli_report_lines")))
    print("janus-gdb: %s; drgn: %s" % (info.get("janus_gdb", "?"), info["drgn"]))


def machine():
    """bench/run.py's facts about this machine, and the CPU model."""
    info = pileup_bench.machine()
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            info["cpu"] = m.group(1) if m else None
    except OSError:
        pass
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--handles", type=int, default=1000, help="VideoRoom handles (default 1000)")
    ap.add_argument("--waiters", type=int, default=200,
                    help="requests piled on rooms_mutex (default 200)")
    ap.add_argument("--sessions", type=int, default=4, help="sessions (default 4)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each measurement (default 3)")
    ap.add_argument("--stack-kib", type=int, default=256,
                    help="Janus's RLIMIT_STACK = thread stack size (default 256)")
    ap.add_argument("--no-live", action="store_true", help="skip the live measurements")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and core")
    ap.add_argument("--workdir", default=None, help="work directory (default: a new temp dir)")
    ap.add_argument("--json", default=None, help="also write the raw results to this file")
    ap.add_argument("--drgn", default="auto", metavar="auto|off|PYTHON",
                    help="column D, drgn's stack walk: auto uses bench/.build/drgn-venv "
                         "(made with pip when missing, as bench/run.py); off; or a Python "
                         "that imports drgn")
    opts = ap.parse_args()
    if opts.handles < opts.waiters + 1:
        sys.exit("janus-scale: --handles must be at least --waiters + 1")
    prefix, problem = janusd.usable_prefix(("gdb",))
    if problem:
        sys.exit("janus-scale: %s" % problem)
    workdir = opts.workdir or tempfile.mkdtemp(prefix="janus-scale-")
    if not os.path.isdir(workdir):
        os.makedirs(workdir)
    if not opts.workdir:
        _cleanup["workdir"] = workdir
    _cleanup["keep"] = opts.keep
    info = machine()
    drgn, why = pileup_bench.drgn_python(opts.drgn)
    info["drgn"] = drgn or ("not measured: %s" % why)
    log("drgn: %s" % info["drgn"])
    log("machine: %d CPUs (%s), %s; %s" % (info["nproc"], info.get("cpu"), info.get("mem"),
                                          info.get("gdb")))
    log("setting up: %d handles over %d sessions, %d waiters, stack %d KiB, in %s"
        % (opts.handles, opts.sessions, opts.waiters, opts.stack_kib, workdir))
    setup = janusd.ScaleSetup(prefix, workdir, n_handles=opts.handles, n_waiters=opts.waiters,
                              n_sessions=opts.sessions, stack_kib=opts.stack_kib,
                              core_path=os.path.join(workdir, "core.janus-scale"))
    _cleanup["setup"] = setup
    j = setup.janus
    info.update({"threads": int(j.status("Threads")), "hloops": setup.hloop_count(),
                 "waiters": len(setup.stall.waiters), "core_bytes": os.path.getsize(setup.core),
                 "janus_rss": j.status("VmRSS"), "stack_sizes_kib": setup.stack_sizes,
                 "setup_seconds": setup.timings, "frozen_lwp": setup.stall.frozen_lwp})
    log("Janus pid %d: %d threads (%d hloop), %d waiters on rooms_mutex 0x%x held by LWP %d; "
        "RSS %s; core %d MiB; stacks %s; setup %s"
        % (j.pid, info["threads"], info["hloops"], info["waiters"], setup.stall.rooms_mutex,
           setup.stall.frozen_lwp, info["janus_rss"], info["core_bytes"] >> 20,
           ", ".join("%d KiB x%d" % kv for kv in sorted(setup.stack_sizes.items(),
                                                         key=lambda kv: -kv[1])[:3]),
           ", ".join("%s %.1fs" % kv for kv in sorted(setup.timings.items()))))
    core = bench_core(setup, opts.runs, workdir, info["threads"], drgn)
    live = None if opts.no_live else bench_live(setup, opts.runs, workdir)
    summary = summarize(core, live)
    prof = None
    if not opts.no_profile:
        log("profiling janus-waitgraph on the core")
        prof, _r = profile(setup, workdir)
    print_summary(summary, opts.runs, info)
    if prof:
        print()
        print("cProfile of janus-waitgraph inside gdb on the core:")
        print(prof.rstrip())
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"machine": info, "summary": summary, "core": core, "live": live,
                       "profile": prof}, f, indent=1, default=str)
    problems = summary["core"]["problems"] + (summary.get("live", {}).get("problems") or [])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
