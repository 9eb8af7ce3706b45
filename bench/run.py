#!/usr/bin/env python3
"""janus-gdb benchmark: janus-waitgraph vs gdb's `thread apply all bt` on a
Janus-shaped pile-up of 500 to 10,000 threads.

    python3 bench/run.py [--threads 500,2000,10000] [--runs N]
                         [--variants gmutex,pthread] [--live] [--profile 2000,10000]

For each thread count and mutex variant: build bench/pileup.c into
bench/.build/, start it, wait until its threads are parked, take a core with
`gdb -p PID -ex gcore`, then run on that core, with the same gdb, interleaved:

  A  gdb -nx -batch EXE -c CORE -x gdbinit.py -ex janus-waitgraph
  B  gdb -nx -batch EXE -c CORE -ex 'thread apply all bt'       (output to /dev/null)
  S  gdb -nx -batch EXE -c CORE -x gdbinit.py                   (start-up + core load only)
  D  drgn: every thread's stack with function names (bench/drgnwalk.py), the
     bar of issue 14; when drgn can be had (--drgn: a venv made in
     bench/.build/drgn-venv by pip), else the column is left out, saying why
  J  the command-line tool's full report, what issue 14 measures against D:
     python3 -m janus_gdb CORE --exe EXE, run from the repository root (so
     this tree's package); its gdb is its child, RSS is the largest of the two

Wall time and peak RSS of each gdb process come from os.wait4().  A and B
also time their command alone inside gdb (A', B': monotonic clock around the
command, printed to stderr).  A's and J's reports are checked against the
fixture's ground truth (verdict, grouped waiters, holder), and J's exit
status against the verdict's (3, a hang), so the benchmark also proves the
analysis at scale.

--live: also attach to the running fixture: how long is the target stopped
(its ticker thread's longest gap, CLOCK_MONOTONIC) for A and B on a live
process.

--profile N,...: run janus-waitgraph under cProfile inside gdb on the cores
of these thread counts (first variant only by default); the top 25 functions
by cumulative and by own time go to bench/.build/profile-N-VARIANT.txt.

Stdlib only; Python 3.6+.  Results: a table on stdout and
bench/.build/results.json.
"""

import argparse
import atexit
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import gdbtime  # bench/, next to this file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
BUILD = os.path.join(BENCH, ".build")
GDBINIT = os.path.join(ROOT, "gdbinit.py")
FLOOR = os.path.join(BENCH, "floor.py")
DRGNWALK = os.path.join(BENCH, "drgnwalk.py")
DRGN_VENV = os.path.join(BUILD, "drgn-venv")
SOURCE = os.path.join(BENCH, "pileup.c")
# the exit status of `janus-gdb CORE` for the pile-up's verdict, a hang behind
# a sleeping holder (EXIT_HANG of janus_gdb/cli/main.py)
CLI_EXIT_HANG = 3

GDB_BASE = ["-nx", "-batch", "-iex", "set pagination off", "-iex", "set width 0",
            "-iex", "set confirm off"]

_children = []      # Popen objects of fixtures, killed at exit
_cleanup_files = []


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------- setup

def check_limits(max_threads, raise_limits):
    """Make sure the kernel allows MAX_THREADS more threads; raise the
    sysctls when root (and say so).  Returns a list of notes."""
    notes = []
    need_threads = max_threads + 64
    need_maps = 4 * max_threads + 4096   # stack + guard per thread, glib, heap arenas
    for path, need in (("/proc/sys/kernel/threads-max", need_threads * 2),
                       ("/proc/sys/kernel/pid_max", need_threads * 2),
                       ("/proc/sys/vm/max_map_count", need_maps)):
        try:
            with open(path) as f:
                cur = int(f.read().split()[0])
        except (OSError, ValueError):
            continue
        if cur >= need:
            continue
        if raise_limits and os.geteuid() == 0:
            try:
                with open(path, "w") as f:
                    f.write(str(need))
                notes.append("raised %s from %d to %d" % (path, cur, need))
                continue
            except OSError as exc:
                notes.append("cannot raise %s (%d < %d): %s" % (path, cur, need, exc))
        else:
            notes.append("%s is %d, %d may be needed (run as root or raise it)" % (path, cur, need))
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft != resource.RLIM_INFINITY and soft < need_threads * 2:
            notes.append("ulimit -u is %d (the fixture raises it to the hard limit %s)"
                         % (soft, "unlimited" if hard == resource.RLIM_INFINITY else hard))
    except (ImportError, ValueError, OSError):
        pass
    return notes


def glib_flags():
    out = subprocess.run(["pkg-config", "--cflags", "--libs", "glib-2.0"],
                         stdout=subprocess.PIPE, check=True, universal_newlines=True).stdout
    return out.split()


def build(variant):
    exe = os.path.join(BUILD, "pileup-%s" % variant)
    if os.path.exists(exe) and os.path.getmtime(exe) >= max(
            os.path.getmtime(SOURCE),
            os.path.getmtime(os.path.join(ROOT, "tests", "fixtures", "janus_mini.h"))):
        return exe
    cmd = ["gcc", "-g", "-O2", "-fno-omit-frame-pointer", "-Wall", "-pthread", "-o", exe, SOURCE]
    if variant == "pthread":
        cmd.append("-DUSE_PTHREAD_MUTEX")
    cmd += glib_flags()
    subprocess.run(cmd, check=True)
    return exe


class Fixture(object):
    """A running pile-up with NTHREADS threads, settled."""

    def __init__(self, exe, nthreads, ticklog=None, timeout=None):
        self.exe = exe
        self.nthreads = nthreads
        self.ticklog = ticklog
        args = [exe, str(nthreads)] + ([ticklog] if ticklog else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     universal_newlines=True, start_new_session=True)
        _children.append(self.proc)
        self.pid = self.proc.pid
        self.truth = {"threads": {}, "counts": {}, "locks": {}, "expect_futex": 0}
        timeout = timeout or (30 + nthreads / 100.0)
        t0 = time.monotonic()
        self._read_truth(timeout)
        self.wait_settled(timeout)
        self.start_seconds = time.monotonic() - t0

    def _read_truth(self, timeout):
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "thread":
                self.truth["threads"][parts[1]] = int(parts[2])
            elif parts[0] == "count":
                self.truth["counts"][parts[1]] = int(parts[2])
            elif parts[0] == "lock":
                self.truth["locks"][parts[1]] = int(parts[2], 16)
            elif parts[0] == "expect_futex":
                self.truth["expect_futex"] = int(parts[1])
            elif parts[0] == "ready":
                return
            if time.monotonic() > deadline:
                break
        err = ""
        if self.proc.poll() is not None:
            err = self.proc.stderr.read()
        self.kill()
        raise RuntimeError("fixture %s %d did not become ready: %s" % (self.exe, self.nthreads, err))

    def syscalls(self):
        counts = {}
        for tid in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/syscall" % (self.pid, tid)) as f:
                    nr = f.read().split(" ")[0]
            except OSError:
                continue
            counts[nr] = counts.get(nr, 0) + 1
        return counts

    def wait_settled(self, timeout):
        deadline = time.monotonic() + timeout
        need = self.truth["expect_futex"]
        while time.monotonic() < deadline:
            if self.syscalls().get("202", 0) >= need:
                time.sleep(0.2)
                return
            time.sleep(0.1)
        raise RuntimeError("fixture did not settle: %d of %d futex waiters"
                           % (self.syscalls().get("202", 0), need))

    def gcore(self, path):
        if os.path.exists(path):
            os.unlink(path)
        _cleanup_files.append(path)
        out = subprocess.run(["gdb"] + GDB_BASE + ["-p", str(self.pid), "-ex", "gcore %s" % path],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=1800)
        if not os.path.exists(path):
            raise RuntimeError("gcore failed: %s" % out.stdout[-2000:])
        return path

    def kill(self):
        gdbtime.kill_group(self.proc)


def _cleanup():
    for p in _children:
        if p.poll() is None:
            gdbtime.kill_group(p)
    for path in _cleanup_files:
        try:
            os.unlink(path)
        except OSError:
            pass


atexit.register(_cleanup)


# ---------------------------------------------------------------- running gdb

def timed_cmd(cmd):
    """gdb -ex arguments that run gdb command CMD and print its own duration."""
    return gdbtime.timed("cmd", cmd)


def run_gdb(args, stdout_path=None, timeout=3600):
    """Run gdb ARGS; returns dict(wall, rss_kib, cmd, rc, stdout, stderr, start, end)."""
    res = gdbtime.run_gdb(args, _children, stdout_path, timeout)
    res["cmd"] = res["times"].get("cmd")
    return res


def core_args(exe, core):
    return GDB_BASE + [exe, "-c", core]


def check_report(text, truth):
    """Problems found in janus-waitgraph's report, [] when it is right."""
    problems = []
    if text is None:
        return ["no output"]
    workers = truth["counts"]["workers"]
    holder = truth["threads"]["holder"]
    # the root-cause verdict: the holder that sleeps with the lock, and how
    # many threads are blocked behind it
    m = re.search(r"^No deadlock found: T\d+ holds 1 lock while sleeping .*; ([\d,]+) threads? "
                  r"(?:is|are) blocked behind it", text, re.M)
    if not m:
        v = re.search(r"^(Found \d+ deadlocks?|No deadlock found).*$", text, re.M)
        problems.append("verdict: %r" % (v.group(0) if v else "(none)"))
    elif int(m.group(1).replace(",", "")) != workers:
        problems.append("verdict counts %s blocked, expected %d" % (m.group(1), workers))
    grouped = 0
    groups = 0
    for g in re.finditer(r"^\s+([\d,]+) threads wait for (M\d+) .*rooms_mutex.*\(held by (T\d+)\)",
                         text, re.M):
        grouped += int(g.group(1).replace(",", ""))
        groups += 1
    if grouped != workers:
        problems.append("grouped waiters on rooms_mutex: %d in %d groups, expected %d"
                        % (grouped, groups, workers))
    if not re.search(r"^Blocked behind T\d+ \(LWP %d\)" % holder, text, re.M):
        problems.append("holder LWP %d not named as what the workers are blocked behind" % holder)
    return problems


PROFILE_SNIPPET = (
    "python import cProfile as _jb_cp, pstats as _jb_ps, time as _jb_t; "
    "_jb_pr = _jb_cp.Profile(); _jb_t0 = _jb_t.monotonic(); _jb_pr.enable(); "
    "gdb.execute('janus-waitgraph', to_string=True); _jb_pr.disable(); "
    "_jb_f = open(%r, 'w'); "
    "_jb_f.write('janus-waitgraph under cProfile: %%.2f s (%s)\\n' %% (_jb_t.monotonic() - _jb_t0)); "
    "_jb_st = _jb_ps.Stats(_jb_pr, stream=_jb_f); _jb_st.strip_dirs(); "
    "_jb_st.sort_stats('cumulative').print_stats(25); "
    "_jb_st.sort_stats('tottime').print_stats(25); "
    "_jb_st.sort_stats('tottime').print_callers(12); "
    "_jb_f.close()")


def profile(exe, core, path, label, a_iex=()):
    args = a_extra(a_iex) + core_args(exe, core) + ["-x", GDBINIT, "-ex", PROFILE_SNIPPET % (path, label)]
    r = run_gdb(args)
    if not os.path.exists(path):
        raise RuntimeError("profile failed: %s" % r["stderr"][-2000:])
    return r


# ---------------------------------------------------------------- benchmark

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def a_extra(a_iex):
    out = []
    for cmd in a_iex:
        out += ["-iex", cmd]
    return out


def _has_drgn(python):
    try:
        return subprocess.run([python, "-c", "import drgn"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def drgn_python(choice):
    """(a Python that imports drgn, None) or (None, why not).  CHOICE: "off",
    "auto" (bench/.build/drgn-venv, made with pip when missing) or a Python."""
    if choice == "off":
        return None, "--drgn off"
    if choice != "auto":
        return (choice, None) if _has_drgn(choice) else (None, "%s cannot import drgn" % choice)
    python = os.path.join(DRGN_VENV, "bin", "python")
    if os.path.exists(python) and _has_drgn(python):
        return python, None
    log("drgn: making %s (pip install drgn)" % os.path.relpath(DRGN_VENV, ROOT))
    try:
        for cmd in ([sys.executable, "-m", "venv", DRGN_VENV],
                    [python, "-m", "pip", "install", "-q", "drgn"]):
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, timeout=900)
            if r.returncode != 0:
                return None, "%s failed: %s" % (" ".join(cmd[-3:]), r.stdout.strip()[-300:])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, "cannot install drgn: %s" % exc
    return (python, None) if _has_drgn(python) else (None, "drgn installed but not importable")


def run_drgn(python, exe, core, workdir=BUILD):
    """One timed drgn walk: run_gdb's dict plus walk {threads, frames, named,
    failed, load, walk} (None when drgnwalk.py failed) and the end of its
    stderr (drgn_stderr).  Its output is kept in WORKDIR/drgn-walk.json."""
    r = gdbtime.run_timed([python, DRGNWALK, core, exe], _children,
                          stdout_path=os.path.join(workdir, "drgn-walk.json"))
    r["walk"] = None
    for line in (r.pop("stdout") or "").splitlines():
        if line.startswith("{"):
            try:
                r["walk"] = json.loads(line)
            except ValueError:
                pass
    r["drgn_stderr"] = (r.pop("stderr", None) or "")[-500:]
    return r


def cli_args(exe, core):
    """Column J: janus-gdb's command-line tool on CORE, the package of this
    tree (run from ROOT: `python3 -m` finds the current directory first)."""
    return [sys.executable, "-m", "janus_gdb", core, "--exe", exe]


def run_cli(exe, core, stdout_path=None):
    """One timed `janus-gdb CORE` run: run_gdb's dict."""
    return gdbtime.run_timed(cli_args(exe, core), _children, stdout_path, cwd=ROOT)


def check_cli(r, truth):
    """Problems of one J run: its report (the CLI prints only the report)
    and its exit status, which must be the verdict's."""
    return ["J: " + p for p in check_report(r["stdout"], truth)] + cli_status_problems(r)


def cli_status_problems(r):
    """Problems of one J run's exit status (a hang) and stderr (a traceback)."""
    if r["rc"] != CLI_EXIT_HANG:
        return ["J: exit status %s, expected %d (a hang): %s"
                % (r["rc"], CLI_EXIT_HANG, r["stderr"].strip()[-500:])]
    if "Traceback" in r["stderr"] or "Python Exception" in r["stderr"]:
        return ["J: %s" % r["stderr"].strip()[-500:]]
    return []


def bench_core(exe, core, fx, runs, label, a_iex=(), drgn=None):
    """Interleaved A, B, S, F, J (and D) runs on CORE; returns the raw results."""
    res = {"A": [], "B": [], "S": [], "F": [], "D": [], "J": []}
    report_path = os.path.join(BUILD, "report-%s.txt" % label)
    cli_report_path = os.path.join(BUILD, "report-cli-%s.txt" % label)
    a_args = (a_extra(a_iex) + core_args(exe, core) + ["-x", GDBINIT]
              + timed_cmd("janus-waitgraph"))
    b_args = core_args(exe, core) + timed_cmd("thread apply all bt")
    s_args = core_args(exe, core) + ["-x", GDBINIT]
    f_args = (a_extra(a_iex) + core_args(exe, core) + ["-x", GDBINIT, "-x", FLOOR]
              + timed_cmd("janus-bench-floor"))
    problems = []
    # one unmeasured run of each first: the core in the page cache for all,
    # janus-gdb's bytecode cache written (see gdbtime.ENV)
    run_gdb(a_args)
    run_gdb(b_args)
    run_cli(exe, core)
    if drgn:
        run_drgn(drgn, exe, core)
    for i in range(runs):
        ra = run_gdb(a_args, stdout_path=report_path)
        probs = check_report(ra["stdout"], fx.truth)
        if ra["rc"] != 0 or "Python Exception" in ra["stderr"]:
            probs.append("gdb rc %s: %s" % (ra["rc"], ra["stderr"][-500:]))
        problems.extend(p for p in probs if p not in problems)
        rb = run_gdb(b_args)
        rs = run_gdb(s_args)
        rf = run_gdb(f_args, stdout_path=os.path.join(BUILD, "floor-%s.txt" % label))
        if rf["rc"] != 0 or "floor: " not in (rf["stdout"] or "") or rf["cmd"] is None:
            problems.append("floor run failed: %s" % rf["stderr"][-300:])
        rj = run_cli(exe, core, stdout_path=cli_report_path)
        probs = check_cli(rj, fx.truth)
        problems.extend(p for p in probs if p not in problems)
        for k, r in (("A", ra), ("B", rb), ("S", rs), ("F", rf), ("J", rj)):
            r.pop("stdout", None)
            r.pop("stderr", None)
            res[k].append(r)
        if drgn:
            rd = run_drgn(drgn, exe, core)
            w = rd["walk"]
            if rd["rc"] != 0 or w is None or w["threads"] < fx.nthreads:
                problems.append("drgn walk failed or saw too few threads: rc %s, %s"
                                % (rd["rc"], w))
            else:
                res["D"].append(rd)
                log("  %s run %d: D %.2fs (load %.2fs, walk %.2fs, %d frames, %d MiB)"
                    % (label, i + 1, rd["wall"], w["load"], w["walk"], w["frames"],
                       rd["rss_kib"] // 1024))
        log("  %s run %d: A %.2fs (cmd %.2fs, %d MiB)  B %.2fs (cmd %.2fs, %d MiB)  S %.2fs"
            "  F %.2fs (cmd %.2fs)  J %.2fs (rc %s, %d MiB)"
            % (label, i + 1, ra["wall"], ra["cmd"] or -1, ra["rss_kib"] // 1024,
               rb["wall"], rb["cmd"] or -1, rb["rss_kib"] // 1024, rs["wall"],
               rf["wall"], rf["cmd"] or -1, rj["wall"], rj["rc"], rj["rss_kib"] // 1024))
    res["problems"] = problems
    res["report"] = report_path
    res["cli_report"] = cli_report_path
    return res


def read_gaps(path, offset):
    """New (gap_seconds, end_seconds) lines of the ticker log from OFFSET."""
    gaps = []
    try:
        with open(path) as f:
            f.seek(offset)
            data = f.read()
            offset = f.tell()
    except OSError:
        return gaps, offset
    for line in data.splitlines():
        parts = line.split()
        if len(parts) == 2:
            gaps.append((int(parts[0]) / 1e9, int(parts[1]) / 1e9))
    return gaps, offset


def bench_live(exe, fx, runs, label, a_iex=()):
    """Attach A and B to the live fixture, interleaved; how long it stays stopped."""
    res = {"A": [], "B": []}
    a_args = (a_extra(a_iex) + GDB_BASE + [exe, "-p", str(fx.pid), "-x", GDBINIT]
              + timed_cmd("janus-waitgraph"))
    b_args = GDB_BASE + [exe, "-p", str(fx.pid)] + timed_cmd("thread apply all bt")
    offset = 0
    _, offset = read_gaps(fx.ticklog, 0)
    problems = []
    report_path = os.path.join(BUILD, "report-live-%s.txt" % label)
    for i in range(runs):
        for key, args in (("A", a_args), ("B", b_args)):
            fx.wait_settled(60)
            time.sleep(0.3)
            _, offset = read_gaps(fx.ticklog, offset)
            r = run_gdb(args, stdout_path=report_path if key == "A" else None)
            time.sleep(0.3)     # the ticker notes the gap once it runs again
            gaps, offset = read_gaps(fx.ticklog, offset)
            inside = [g for g, end in gaps if r["start"] <= end <= r["end"] + 0.3]
            r["stopped"] = max(inside) if inside else 0.0
            if key == "A":
                probs = check_report(r["stdout"], fx.truth)
                problems.extend(p for p in probs if p not in problems)
            r.pop("stdout", None)
            r.pop("stderr", None)
            res[key].append(r)
        log("  %s live run %d: A stopped %.2fs (gdb %.2fs)  B stopped %.2fs (gdb %.2fs)"
            % (label, i + 1, res["A"][-1]["stopped"], res["A"][-1]["wall"],
               res["B"][-1]["stopped"], res["B"][-1]["wall"]))
    res["problems"] = problems
    return res


def fmt(x, spec="%.2f"):
    return "-" if x is None else spec % x


def summarize(results, live):
    rows = []
    smallest = {}
    for r in results:
        n = r["threads"]
        a = median(x["wall"] for x in r["core"]["A"])
        b = median(x["wall"] for x in r["core"]["B"])
        acmd = median(x["cmd"] for x in r["core"]["A"])
        bcmd = median(x["cmd"] for x in r["core"]["B"])
        s = median(x["wall"] for x in r["core"]["S"])
        f = median(x["wall"] for x in r["core"]["F"])
        fcmd = median(x["cmd"] for x in r["core"]["F"])
        rss_a = median(x["rss_kib"] for x in r["core"]["A"]) / 1024.0
        rss_b = median(x["rss_kib"] for x in r["core"]["B"]) / 1024.0
        rss_s = median(x["rss_kib"] for x in r["core"]["S"]) / 1024.0
        dl = r["core"].get("D") or []
        d = median(x["wall"] for x in dl) if dl else None
        rss_d = median(x["rss_kib"] for x in dl) / 1024.0 if dl else None
        jl = r["core"].get("J") or []
        j = median(x["wall"] for x in jl) if jl else None
        rss_j = median(x["rss_kib"] for x in jl) / 1024.0 if jl else None
        row = {"threads": n, "variant": r["variant"], "A": a, "B": b, "ratio": a / b,
               "D": d, "A_over_D": a / d if d else None, "rss_D": rss_d,
               "D_ms_per_thread": 1000.0 * d / n if d else None,
               "J": j, "J_over_D": j / d if j and d else None, "rss_J": rss_j,
               "rss_J_over_B": rss_j / rss_b if rss_j else None,
               "J_ms_per_thread": 1000.0 * j / n if j else None,
               "rss_A": rss_a, "rss_B": rss_b, "rss_S": rss_s, "rss_ratio": rss_a / rss_b,
               "A_cmd": acmd, "B_cmd": bcmd, "S": s, "F": f, "F_cmd": fcmd,
               "F_ratio": f / b if f else None,
               "F_cmd_ms_per_thread": 1000.0 * fcmd / n if fcmd is not None else None,
               "A_ms_per_thread": 1000.0 * a / n, "B_ms_per_thread": 1000.0 * b / n,
               "A_cmd_ms_per_thread": 1000.0 * acmd / n if acmd is not None else None,
               "ok": not r["core"]["problems"], "problems": r["core"]["problems"]}
        if live and "live" in r:
            row["live_A"] = median(x["stopped"] for x in r["live"]["A"])
            row["live_B"] = median(x["stopped"] for x in r["live"]["B"])
            row["live_A_gdb"] = median(x["wall"] for x in r["live"]["A"])
            row["live_B_gdb"] = median(x["wall"] for x in r["live"]["B"])
            row["live_ok"] = not r["live"]["problems"]
            row["problems"] = row["problems"] + ["live: " + p for p in r["live"]["problems"]]
        base = smallest.get(r["variant"])
        if base is None or n < base["threads"]:
            smallest[r["variant"]] = row
        rows.append(row)
    # issue 14 measures J's per-thread cost against that at 500 threads
    at500 = dict((row["variant"], row) for row in rows if row["threads"] == 500)
    largest = {}
    for row in rows:
        if row["threads"] > largest.get(row["variant"], 0):
            largest[row["variant"]] = row["threads"]
    for row in rows:
        base = smallest[row["variant"]]
        b500 = at500.get(row["variant"])
        row["J_growth_vs_500"] = (row["J_ms_per_thread"] / b500["J_ms_per_thread"]
                                  if b500 and row["J_ms_per_thread"] and b500["J_ms_per_thread"]
                                  else None)
        row["largest"] = row["threads"] == largest[row["variant"]]
        row["growth"] = row["A_ms_per_thread"] / base["A_ms_per_thread"]
        row["B_growth"] = row["B_ms_per_thread"] / base["B_ms_per_thread"]
        row["D_growth"] = (row["D_ms_per_thread"] / base["D_ms_per_thread"]
                           if row["D_ms_per_thread"] and base["D_ms_per_thread"] else None)
        row["cmd_growth"] = (row["A_cmd_ms_per_thread"] / base["A_cmd_ms_per_thread"]
                             if row["A_cmd_ms_per_thread"] and base["A_cmd_ms_per_thread"] else None)
        row["F_cmd_growth"] = (row["F_cmd_ms_per_thread"] / base["F_cmd_ms_per_thread"]
                               if row["F_cmd_ms_per_thread"] and base["F_cmd_ms_per_thread"]
                               else None)
    return rows


def print_table(rows, live, runs):
    print()
    print("Core file, median of %d interleaved runs each.  A = janus-waitgraph, B = thread apply "
          "all bt," % runs)
    print("S = gdb start-up + core load only; A', B' = the command alone inside gdb; RSS = gdb's "
          "peak (MiB);")
    print("growth = ms per thread / the same at the smallest thread count (B growth: the same "
          "for B, gdb's own scaling).")
    print("F = the floor (bench/floor.py): list, select and unwind every thread under "
          "janus-gdb's settings, nothing else; F/B and F' growth bound what any gdb extension "
          "can reach.")
    print("D = drgn's all-thread stack walk with function names (bench/drgnwalk.py); J = the "
          "command-line tool's full report, `python3 -m janus_gdb CORE --exe EXE` (RSS: its gdb); "
          "J growth = J ms per thread / the same at 500 threads.")
    hdr = ("threads", "variant", "A s", "B s", "A/B", "RSS A", "RSS B", "RSS A/B", "RSS S",
           "S s", "A' s", "B' s", "A ms/thr", "growth", "A' ms/thr", "growth", "B growth",
           "F/B", "F' s", "F' growth", "D s", "A/D", "RSS D", "D growth",
           "J s", "J/D", "RSS J", "RSS J/B", "J ms/thr", "J growth", "report")
    lines = [hdr]
    for r in rows:
        lines.append((
            "{:,}".format(r["threads"]), r["variant"], fmt(r["A"]), fmt(r["B"]), fmt(r["ratio"]),
            fmt(r["rss_A"], "%.0f"), fmt(r["rss_B"], "%.0f"), fmt(r["rss_ratio"]),
            fmt(r["rss_S"], "%.0f"), fmt(r["S"]), fmt(r["A_cmd"]), fmt(r["B_cmd"]),
            fmt(r["A_ms_per_thread"], "%.3f"), fmt(r["growth"]),
            fmt(r["A_cmd_ms_per_thread"], "%.3f"), fmt(r["cmd_growth"]), fmt(r["B_growth"]),
            fmt(r["F_ratio"]), fmt(r["F_cmd"]), fmt(r["F_cmd_growth"]),
            fmt(r["D"]), fmt(r["A_over_D"]), fmt(r["rss_D"], "%.0f"), fmt(r["D_growth"]),
            fmt(r["J"]), fmt(r["J_over_D"]), fmt(r["rss_J"], "%.0f"), fmt(r["rss_J_over_B"]),
            fmt(r["J_ms_per_thread"], "%.3f"), fmt(r["J_growth_vs_500"]),
            "ok" if r["ok"] else "WRONG"))
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(hdr))]
    for l in lines:
        print("  ".join(str(c).rjust(w) for c, w in zip(l, widths)))
    if live:
        print()
        print("Live process (attach to detach), median of %d interleaved runs: time the target "
              "was stopped (its own clock) and gdb's wall time." % runs)
        hdr = ("threads", "variant", "stopped A s", "stopped B s", "A/B", "gdb A s", "gdb B s",
               "report")
        lines = [hdr]
        for r in rows:
            if "live_A" not in r:
                continue
            lines.append(("{:,}".format(r["threads"]), r["variant"], fmt(r["live_A"]),
                          fmt(r["live_B"]),
                          fmt(r["live_A"] / r["live_B"] if r["live_B"] else None),
                          fmt(r["live_A_gdb"]), fmt(r["live_B_gdb"]),
                          "ok" if r["live_ok"] else "WRONG"))
        widths = [max(len(str(l[i])) for l in lines) for i in range(len(hdr))]
        for l in lines:
            print("  ".join(str(c).rjust(w) for c, w in zip(l, widths)))
    bad = [r for r in rows if r["problems"]]
    for r in bad:
        print("\n%s threads, %s: the report is wrong:\n  %s"
              % (r["threads"], r["variant"], "\n  ".join(r["problems"])))
    print()
    print("Targets (issue 4): A/B <= 0.8 at 2,000 and 10,000 threads; RSS A/B <= 1.2; "
          "per-thread cost at 10,000 <= 1.3x that at 500.")
    for r in rows:
        verdicts = []
        if r["threads"] >= 2000:
            verdicts.append("ratio %.2f %s" % (r["ratio"], "met" if r["ratio"] <= 0.8 else "NOT met"))
        verdicts.append("RSS %.2f %s" % (r["rss_ratio"], "met" if r["rss_ratio"] <= 1.2 else "NOT met"))
        if r["growth"] != 1.0:
            verdicts.append("growth %.2f (command alone %s) %s"
                            % (r["growth"], fmt(r["cmd_growth"]),
                               "met" if r["growth"] <= 1.3 else "NOT met"))
        if r["F_ratio"] is not None:
            verdicts.append("[floor: F/B %.2f, F' growth %s]" % (r["F_ratio"], fmt(r["F_cmd_growth"])))
        print("  %6s %-7s %s" % ("{:,}".format(r["threads"]), r["variant"], "; ".join(verdicts)))
    print()
    print("Targets (issue 14): J/D <= 1.5 at 2,000 and 10,000 threads (J = janus-gdb CORE, "
          "D = drgn's stack walk); J per-thread cost at the largest count <= 1.3x that at 500; "
          "A' <= 0.3x B'; RSS J <= RSS B.  [A/D and RSS A/B: the in-gdb command's, for "
          "comparison.]")

    def verdict(name, value, limit):
        return "%s %.2f %s" % (name, value, "met" if value <= limit else "NOT met")

    for r in rows:
        verdicts = []
        if r["threads"] >= 2000:
            if r["J_over_D"] is not None:
                verdicts.append(verdict("J/D", r["J_over_D"], 1.5))
            else:
                verdicts.append("J/D - (%s)" % ("no D" if r["D"] is None else "no J"))
        if r["largest"] and r["threads"] > 500:
            if r["J_growth_vs_500"] is not None:
                verdicts.append(verdict("J growth vs 500", r["J_growth_vs_500"], 1.3))
            else:
                verdicts.append("J growth vs 500 - (500 not run)")
        if r["A_cmd"] is not None and r["B_cmd"]:
            verdicts.append(verdict("A'/B'", r["A_cmd"] / r["B_cmd"], 0.3))
        if r["rss_J_over_B"] is not None:
            verdicts.append(verdict("RSS J/B", r["rss_J_over_B"], 1.0))
        extra = []
        if r["A_over_D"] is not None and r["threads"] >= 2000:
            extra.append("A/D %.2f" % r["A_over_D"])
        extra.append("RSS A/B %.2f" % r["rss_ratio"])
        print("  %6s %-7s %s  [%s]" % ("{:,}".format(r["threads"]), r["variant"],
                                       "; ".join(verdicts), ", ".join(extra)))


def machine():
    info = {"nproc": os.cpu_count()}
    try:
        head = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %cI %s"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "janus_gdb",
                                "gdbinit.py"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               universal_newlines=True).stdout.strip()
        info["janus_gdb"] = head[:100] + (" (janus_gdb/ modified)" if dirty else "")
    except OSError:
        pass
    try:
        info["gdb"] = subprocess.run(["gdb", "--version"], stdout=subprocess.PIPE,
                                     universal_newlines=True).stdout.splitlines()[0]
        info["mem"] = subprocess.run(["free", "-h"], stdout=subprocess.PIPE,
                                     universal_newlines=True).stdout.splitlines()[1]
        info["uname"] = " ".join(os.uname())
    except (OSError, IndexError):
        pass
    return info


def int_list(text):
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="500,2000,10000", help="thread counts (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each measurement (default 3)")
    ap.add_argument("--variants", default="gmutex,pthread",
                    help="gmutex (GMutex, Janus's default) and/or pthread (default %(default)s)")
    ap.add_argument("--live", action="store_true", help="also measure attach-to-detach on the live process")
    ap.add_argument("--profile", default="2000,10000",
                    help="thread counts to profile janus-waitgraph at ('' for none; "
                         "default %(default)s)")
    ap.add_argument("--profile-variants", default=None,
                    help="variants to profile (default: the first of --variants)")
    ap.add_argument("--no-raise-limits", action="store_true",
                    help="do not raise threads-max / pid_max / max_map_count when root")
    ap.add_argument("--a-iex", action="append", default=[], metavar="CMD",
                    help="a gdb command run before A (janus-waitgraph) only, e.g. "
                         "'set dcache line-size 4096': to try a setting before building it "
                         "into janus-gdb (repeatable)")
    ap.add_argument("--keep-cores", action="store_true", help="keep the cores in bench/.build")
    ap.add_argument("--drgn", default="auto", metavar="auto|off|PYTHON",
                    help="column D, drgn's stack walk: auto makes bench/.build/drgn-venv with "
                         "pip when needed; off; or a Python that imports drgn")
    opts = ap.parse_args()

    for tool in ("gdb", "gcc", "pkg-config"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s is needed" % tool)
    threads = sorted(int_list(opts.threads))
    variants = [v for v in opts.variants.split(",") if v]
    for v in variants:
        if v not in ("gmutex", "pthread"):
            sys.exit("bench: unknown variant %r" % v)
    profile_at = set(int_list(opts.profile)) if opts.profile else set()
    profile_variants = (opts.profile_variants.split(",") if opts.profile_variants
                        else variants[:1])
    os.makedirs(BUILD, exist_ok=True)
    t_start = time.monotonic()
    for note in check_limits(max(threads), not opts.no_raise_limits):
        log(note)
    info = machine()
    log("machine: %d CPUs; %s; %s" % (info["nproc"], " ".join(info.get("mem", "?").split()[:2]),
                                      info.get("gdb", "?")))
    log("janus-gdb: %s" % info.get("janus_gdb", "?"))

    drgn, why = drgn_python(opts.drgn)
    info["drgn"] = drgn or ("not measured: %s" % why)
    log("drgn: %s" % info["drgn"])
    results = []
    profiles = []
    try:
        for n in threads:
            for variant in variants:
                label = "%d-%s" % (n, variant)
                exe = build(variant)
                ticklog = os.path.join(BUILD, "ticks-%s.log" % label) if opts.live else None
                if ticklog:
                    _cleanup_files.append(ticklog)
                t0 = time.monotonic()
                fx = Fixture(exe, n, ticklog)
                log("%s: fixture pid %d settled in %.1fs (%s)" % (
                    label, fx.pid, fx.start_seconds,
                    ", ".join("%s %d" % kv for kv in sorted(fx.truth["counts"].items()))))
                entry = {"threads": n, "variant": variant, "truth": fx.truth}
                try:
                    core = os.path.join(BUILD, "pileup-%s.core" % label)
                    t1 = time.monotonic()
                    fx.gcore(core)
                    if opts.keep_cores:
                        _cleanup_files.remove(core)
                    entry["gcore_seconds"] = time.monotonic() - t1
                    entry["core_bytes"] = os.path.getsize(core)
                    log("%s: core %d MiB in %.1fs" % (label, entry["core_bytes"] >> 20,
                                                      entry["gcore_seconds"]))
                    if opts.live:
                        entry["live"] = bench_live(exe, fx, opts.runs, label, opts.a_iex)
                finally:
                    fx.kill()
                entry["core"] = bench_core(exe, core, fx, opts.runs, label, opts.a_iex, drgn)
                if n in profile_at and variant in profile_variants:
                    ppath = os.path.join(BUILD, "profile-%s.txt" % label)
                    pr = profile(exe, core, ppath, label, opts.a_iex)
                    profiles.append(ppath)
                    log("%s: profile in %.1fs -> %s" % (label, pr["wall"], ppath))
                if not opts.keep_cores:
                    os.unlink(core)
                entry["seconds"] = time.monotonic() - t0
                results.append(entry)
    finally:
        _cleanup()

    rows = summarize(results, opts.live)
    print_table(rows, opts.live, opts.runs)
    total = time.monotonic() - t_start
    print()
    print("Machine: %d CPUs, %s, %s.  Total time %.0fs." % (
        info["nproc"], " ".join(info.get("mem", "?").split()[:2]), info.get("gdb", "?"), total))
    print("janus-gdb: %s" % info.get("janus_gdb", "?"))
    print("drgn: %s" % info["drgn"])
    if profiles:
        print("Profiles: %s" % ", ".join(os.path.relpath(p, ROOT) for p in profiles))
    with open(os.path.join(BUILD, "results.json"), "w") as f:
        json.dump({"machine": info, "runs": opts.runs, "rows": rows, "raw": results,
                   "total_seconds": total}, f, indent=1, default=str)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
