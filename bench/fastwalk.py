"""Issue 14's foundation measured: every thread's stack of a pile-up core
read without gdb (janus_gdb/target: coremem, coreunwind, elfsyms), beside
gdb's `thread apply all bt` and drgn's walk (bench/drgnwalk.py) on the same
core, interleaved.

    python3 bench/fastwalk.py [--threads 2000] [--runs 3] [--variant gmutex]
                              [--drgn auto|off|PYTHON]
    python3 bench/fastwalk.py --walk CORE     # one walk, one JSON line

Builds and runs bench/pileup.c as bench/run.py does (its Fixture and gcore),
then times, each in its own process (wall from fork to exit, peak RSS):

  R  python3 bench/fastwalk.py --walk CORE: open the core, list every
     thread and its registers, unwind every stack by .eh_frame CFI, name
     every frame from the symbol tables (the reader alone: no report, no gdb)
  B  gdb -nx -batch EXE -c CORE -ex 'thread apply all bt'
  D  drgn's walk (stacks + function names), when drgn can be had

and checks R: every thread's frames equal gdb's (tests/fastcore_gdb.py:
pc for pc, function names among the symbol table's aliases; gdb's inlined
and tail-call frames aside, gdb stops at main), and every request worker of
the fixture (its own count) unwound through janus_transport_task down to
clone3.  Stdlib only; the cores go to bench/.build and are deleted.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def walk(core):
    """One walk of CORE; returns the JSON-able summary."""
    from janus_gdb.target import coremem, coreunwind
    t0 = time.monotonic()
    c = coremem.CoreMemory(core)
    nthreads = len(c.threads)
    regs = sum(len(t.regs) for t in c.threads)
    t1 = time.monotonic()
    got = coreunwind.walk_all(c)
    t2 = time.monotonic()
    frames = sum(len(f) for _t, f, _n, _w in got)
    named = sum(1 for _t, _f, names, _w in got for n in names if n)
    workers = sum(1 for _t, _f, names, why in got
                  if "janus_transport_task" in names and why.startswith("outermost"))
    whys = {}
    for _t, _f, _n, why in got:
        key = why.split(" at pc")[0].split(" 0x")[0]
        whys[key] = whys.get(key, 0) + 1
    c.close()
    return {"threads": nthreads, "registers": regs, "frames": frames, "named": named,
            "workers_unwound": workers, "stops": whys, "list": t1 - t0, "walk": t2 - t1}


def compare_with_gdb(exe, core, run):
    """Problems found comparing the reader's walk of every thread with
    gdb's frames (tests/fastcore_gdb.py: real frames, pc and name) on CORE:
    [] when every thread agrees frame for frame (gdb stops at main)."""
    from janus_gdb.target import coremem, coreunwind
    script = os.path.join(os.path.dirname(HERE), "tests", "fastcore_gdb.py")
    out = os.path.join(run.BUILD, "fastwalk-gdb.txt")
    r = run.run_gdb(run.core_args(exe, core) + ["-x", script], stdout_path=out)
    view = {}
    for line in (r.get("stdout") or "").splitlines():
        if line.startswith("FASTCORE "):
            d = json.loads(line[9:])
            view[d["lwp"]] = d
    problems = []
    with coremem.CoreMemory(core) as c:
        un = coreunwind.Unwinder(c)
        if sorted(view) != sorted(t.lwp for t in c.threads):
            problems.append("gdb lists %d threads, the reader %d" % (len(view), len(c.threads)))
        for t in c.threads:
            g = view.get(t.lwp)
            if g is None:
                continue
            frames, _why = un.unwind(t)
            gpcs = [pc for pc, _name in g["frames"]]
            pcs = [pc for pc, _cfa, _how in frames]
            if pcs[:len(gpcs)] != gpcs or (len(pcs) > len(gpcs) and
                                           g["frames"][-1][1] != "main"):
                problems.append("LWP %d: frames differ" % t.lwp)
                continue
            for i, (pc, gname) in enumerate(g["frames"]):
                fn = un.function(pc, caller=i > 0)
                names = [fn[0]] + fn[1] if fn else []
                if (gname is None) != (fn is None) or (gname and not any(
                        n == gname or n.split(".")[0] == gname for n in names)):
                    problems.append("LWP %d frame %d: gdb %s, reader %s" % (t.lwp, i, gname,
                                                                            names))
                    break
            if len(problems) > 5:
                break
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--walk", metavar="CORE", help="walk CORE once and print one JSON line")
    ap.add_argument("--threads", default="2000", help="thread counts (default %(default)s)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--variant", default="gmutex", choices=("gmutex", "pthread"))
    ap.add_argument("--drgn", default="auto", metavar="auto|off|PYTHON")
    opts = ap.parse_args()
    if opts.walk:
        print(json.dumps(walk(opts.walk)))
        return 0

    import run  # bench/run.py: build, Fixture, gcore, timed runs, drgn
    os.makedirs(run.BUILD, exist_ok=True)
    drgn, why = run.drgn_python(opts.drgn)
    run.log("drgn: %s" % (drgn or "not measured: %s" % why))
    rows = []
    ok = True
    try:
        for n in run.int_list(opts.threads):
            label = "%d-%s" % (n, opts.variant)
            exe = run.build(opts.variant)
            fx = run.Fixture(exe, n)
            core = os.path.join(run.BUILD, "fastwalk-%s.core" % label)
            try:
                fx.gcore(core)
            finally:
                fx.kill()
            r_argv = [sys.executable, os.path.abspath(__file__), "--walk", core]
            b_args = run.core_args(exe, core) + ["-ex", "thread apply all bt"]
            res = {"R": [], "B": [], "D": []}
            walks = []
            out = os.path.join(run.BUILD, "fastwalk-%s.json" % label)
            run.gdbtime.run_timed(r_argv, run._children)          # warm-up, page cache
            run.run_gdb(b_args)
            for i in range(opts.runs):
                rr = run.gdbtime.run_timed(r_argv, run._children, stdout_path=out)
                w = json.loads((rr.get("stdout") or "{}").strip().splitlines()[-1]) \
                    if rr.get("stdout") else None
                rb = run.run_gdb(b_args)
                res["R"].append(rr)
                res["B"].append(rb)
                walks.append(w)
                line = "  %s run %d: R %.2fs (list %.3fs, walk %.2fs, %d MiB)  B %.2fs" % (
                    label, i + 1, rr["wall"], w["list"] if w else -1, w["walk"] if w else -1,
                    rr["rss_kib"] // 1024, rb["wall"])
                if drgn:
                    rd = run.run_drgn(drgn, exe, core)
                    res["D"].append(rd)
                    dw = rd.get("walk") or {}
                    line += "  D %.2fs (%s frames, %s named)" % (rd["wall"], dw.get("frames"),
                                                                dw.get("named"))
                run.log(line)
            problems = compare_with_gdb(exe, core, run)
            run.log("  %s: compared with gdb frame for frame: %s"
                    % (label, "; ".join(problems) or "same"))
            os.unlink(core)
            w = walks[-1]
            if w is None:
                problems.append("the walk printed nothing")
            else:
                if w["threads"] < n:
                    problems.append("%d threads listed, fewer than %d" % (w["threads"], n))
                if w["workers_unwound"] != fx.truth["counts"].get("workers"):
                    problems.append("%d workers unwound to the end, the fixture has %s"
                                    % (w["workers_unwound"], fx.truth["counts"].get("workers")))
            ok = ok and not problems
            med = dict((k, run.median([x["wall"] for x in v]) if v else None)
                       for k, v in res.items())
            rss = dict((k, run.median([x["rss_kib"] for x in v]) // 1024 if v else None)
                       for k, v in res.items())
            rows.append((n, med, rss, w, problems))
    finally:
        run._cleanup()
    print()
    print("threads    R s    B s    D s   R/B   R/D  RSS R  RSS B  RSS D  R list s  R walk s"
          "  frames  named  check")
    for n, med, rss, w, problems in rows:
        d = med["D"]
        print("%7s %6.2f %6.2f %6s %5.2f %5s %6d %6d %6s %9.3f %9.2f %7d %6d  %s" % (
            "{:,}".format(n), med["R"], med["B"], "%.2f" % d if d else "-",
            med["R"] / med["B"], "%.2f" % (med["R"] / d) if d else "-", rss["R"], rss["B"],
            rss["D"] if d else "-", w["list"] if w else -1, w["walk"] if w else -1,
            w["frames"] if w else 0, w["named"] if w else 0,
            "ok" if not problems else "WRONG: " + "; ".join(problems)))
        if w:
            stops = sorted(w["stops"].items())
            print("        stops: %s" % ", ".join("%s %d" % kv for kv in stops))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
