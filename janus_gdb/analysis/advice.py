"""What to do next, fitted to what the analysis found: one line each.

Pure logic over an ``analyze.Report`` and its causes (``verdict.causes``);
no gdb.  Lines are plain text (the renderers escape them).
"""

import os

from . import sourcecite

MAX_NAMED = 3


def _involved(report, found):
    """Threads the verdict rests on: blocked, holders, candidates, cycles."""
    nums = set(report.cycle_threads())
    for c in found:
        nums.update(c.blocked)
        if c.root.thread is not None:
            nums.add(c.root.thread)
        if c.root.lock is not None:
            nums.update(c.root.lock.possible)
            nums.update(c.root.lock.candidates)
    return [report.thread(n) for n in sorted(nums) if report.thread(n) is not None]


def _module_name(report, lib):
    if lib is not None:
        return lib
    exe = report.target.get("executable")
    return os.path.basename(exe) if exe else "the executable"


def _no_debug_info(report, threads):
    """Modules of application frames without line info (analysed from their
    machine code or not), and whether some frame with line info could not be
    analysed (its source is not readable)."""
    mods = []
    unread = False
    app = {}      # lib -> whether it is the application's (asked once per lib)
    for t in threads:
        for fr in t.frames:
            if fr.system or (fr.pc == 0 and fr.function is None):
                continue    # (pc 0: where gdb's unwinding gave up, no frame)
            if fr.line is None:
                # machine code may have shown what it holds: the names, lines
                # and variables are still missing
                if fr.lib not in app:
                    app[fr.lib] = (fr.lib is None or fr.lib.startswith("libjanus")
                                   or _app_lib(report, fr.lib))
                name = _module_name(report, fr.lib)
                if app[fr.lib] and name not in mods:
                    mods.append(name)
            elif fr.line is not None and fr.level not in t.analysed_levels:
                unread = True
    return mods, unread


def _app_lib(report, lib):
    """A library with line info somewhere is the application's (it was built with -g)."""
    for t in report.threads[:2000]:
        for fr in t.frames:
            if fr.lib == lib and fr.line is not None:
                return True
    return False


def _is_janus(report):
    exe = report.target.get("executable") or ""
    return os.path.basename(exe) == "janus"


def next_steps(report, found, used_locklog=False):
    """Lines saying what to do next; [] when the verdict needs nothing more."""
    out = []
    threads = _involved(report, found)
    mods, unread = _no_debug_info(report, threads)
    if mods:
        pkg = "janus-dbgsym" if _is_janus(report) else "PACKAGE-dbgsym"
        named = ", ".join(mods[:MAX_NAMED]) + (" (+%d)" % (len(mods) - MAX_NAMED)
                                               if len(mods) > MAX_NAMED else "")
        out.append("No debug info for %s (the frames involved have no lines or variables, "
                   "so owners are not read from their source). Get it with debuginfod (gdb "
                   ">= 12: `set debuginfod enabled on`) or Debian's dbgsym packages (`apt-get "
                   "install %s` from the debug archive), and give the sources with "
                   "`directory /path/to/janus/src`." % (named, pkg))
    if unread:
        out.append("Some sources could not be read: give gdb their directory "
                   "(`directory /path/to/janus/src`) and run the analysis again.")
    unknown = [c for c in found if c.kind == "unknown-owner"]
    if unknown and not used_locklog:
        ids = ", ".join(c.root.lock.id for c in unknown[:MAX_NAMED])
        out.append("To see who took %s: turn on Janus's lock debugging (admin API "
                   "`set_locking_debug`, or `lock_debug` in janus.jcfg) and pass its log "
                   "with `--lock-log FILE`%s." % (
                       ids, "; or build Janus with --enable-pthread-mutex for exact owners"
                       if any(c.root.lock.kind == "gmutex" for c in unknown) else ""))
    for lock in report.locks:
        if not lock.leaked and not (lock.owner_alive is False and lock.owner_lwp):
            continue
        if lock.leak_site:
            where = "after the lock at %s" % lock.leak_site.split(" (lock-debug log")[0]
        elif lock.owner_claim is not None:
            c = lock.owner_claim
            where = "after the lock at %s:%d in %s" % (c.file, c.line, c.function)
        elif lock.owner_alive is False:
            where = "on the exit path of the thread LWP %d" % lock.owner_lwp
        elif lock.owner_num is not None:
            t = report.thread(lock.owner_num)
            where = "in the code T%d ran before%s" % (
                lock.owner_num, " (entry %s)" % t.entry if t is not None and t.entry else "")
        else:
            where = None
        if where is None:
            line = ("%s is probably leaked: to find the lock without an unlock, run with "
                    "Janus's lock debugging and `--lock-log FILE`." % lock.id)
        else:
            line = "%s is probably leaked: look for a return without an unlock %s." % (
                lock.id, where)
        if getattr(lock, "missing_unlocks", None):
            line += (" The source has an exit that can leave it locked: %s (a possible "
                     "missing unlock, static evidence: check that this exit is the one taken)." % sourcecite.unlock_text(
                         lock.missing_unlocks[0]))
        out.append(line)
        if len(out) > 8:
            break
    for c in found:
        if c.kind != "holder-waits":
            continue
        t = report.thread(c.root.thread)
        sites = []
        for l in t.holds[:MAX_NAMED]:
            c = l.owner_claim
            if c is None and l.inference is not None and l.inference.num == t.num:
                c = l.inference.claim      # an exact owner the source agrees with
            if c is not None and c.file and c.line:
                sites.append("%s:%d" % (c.file, c.line))
        out.append("T%d waits while holding %s%s: whatever it waits for must not need those "
                   "locks, or the wait must move after the unlock." % (
                       t.num, ", ".join(l.id for l in t.holds[:MAX_NAMED]),
                       " (locked at %s)" % ", ".join(sites) if sites else ""))
        break
    return out
