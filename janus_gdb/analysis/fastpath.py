"""The fast path (issue 14; docs/performance.md): gdb reads one thread of
each group of identical stacks (``target/coregroups.py``) plus a witness,
and the threads no group holds; ``clones`` copies the rest.

Used for a core opened in the only inferior, on x86_64 and aarch64, when
the core file can be read directly and its executable is the one gdb
has, and for a live process of 32 threads or more on this machine
(``target/livemem.py``, /proc); otherwise, or with ``--gdb-only``, every
thread is read through gdb as before.  The report is the same either way:
tests/conftest.py has every analysis the tests make checked against
``--gdb-only`` (gdbui/fastcheck.py).
"""

import os

import gdb  # pylint: disable=import-error

from . import clones
from .stackscan import ROLE_OBJECT_FUNCTIONS
from ..target import coregroups
from ..target import coremem
from ..target import livemem
from ..target import gdbtarget
from ..target.corefile import CoreFileError

# Groups smaller than this are not worth a second look: gdb reads them.
MIN_GROUP = 2
# A live process with fewer threads is read by gdb alone: listing the
# threads and reading /proc would cost more than it saves.
MIN_LIVE_THREADS = 32
# Set JANUS_GDB_FAST_PATH=off in the environment to read every thread
# through gdb (as --gdb-only does).
ENV = "JANUS_GDB_FAST_PATH"

# What the last analysis did, for tests and benchmarks: {"threads",
# "groups", "read", "copied", "why": {reason a group was read: threads},
# "roles": {how copies' role objects were read: copies}} or None.
LAST = [None]


def plan(inf, kind, gdb_only=False, mismatch=None):
    """The CoreGroups of the core INF was opened from (KIND "core") or of
    the live process (KIND "live"), or None when the fast path does not
    apply: more than one inferior, a remote target, a core the reader
    cannot open or unwind, a core whose executable is not the one gdb has
    (MISMATCH: gdbtarget.core_mismatch's sentence), --gdb-only."""
    LAST[0] = None
    if gdb_only or os.environ.get(ENV, "").lower() in ("off", "0", "no"):
        return None
    try:
        if len(gdb.inferiors()) != 1:
            return None
    except gdb.error:
        return None
    if kind == "live":
        return _live_plan(inf)
    if kind != "core":
        return None
    path = gdbtarget.core_path(inf)
    if not path:
        return None
    if mismatch:
        # gdb unwinds with another program's CFI and symbols than the
        # files the core names: its frames are not the reader's
        LAST[0] = {"why": mismatch}
        return None
    try:
        groups = coregroups.read_groups(path, gdbtarget.executable(inf))
    except CoreFileError as exc:
        LAST[0] = {"why": str(exc)}
        return None
    if not any(len(m) >= MIN_GROUP for m in groups.groups.values()):
        groups.close()
        LAST[0] = {"threads": len(groups.threads), "groups": 0, "read": len(groups.threads),
                   "copied": 0, "why": "no two threads have the same stack"}
        return None
    return groups


def _live_plan(inf):
    """The CoreGroups of the live process INF, read from /proc (livemem),
    or None."""
    if not gdbtarget.is_native(inf):
        return None
    try:
        nums = dict((t.ptid[1], t.num) for t in inf.threads() if t.ptid[1])
    except gdb.error:
        return None
    if len(nums) < MIN_LIVE_THREADS:
        LAST[0] = {"why": "fewer than %d threads" % MIN_LIVE_THREADS}
        return None
    try:
        mem = livemem.LiveMemory(inf.pid, nums)
        groups = coregroups.group_threads(mem, gdbtarget.executable(inf),
                                          "process %d" % inf.pid)
    except (livemem.LiveError, CoreFileError) as exc:
        LAST[0] = {"why": str(exc)}
        return None
    # a thread /proc did not show (gone, unreadable): gdb reads it
    groups.unread = set(nums.values()) - set(groups.threads)
    if not groups.groups:
        groups.close()
        LAST[0] = {"threads": len(groups.threads), "groups": 0, "read": len(nums),
                   "copied": 0, "why": "no two threads have the same stack"}
        return None
    return groups


def fill(groups, snaps, scanner, read_more):
    """SNAPS (those gdb read: groups.first_pass()) completed with every
    thread of the core: copies where clones.copyable allows, else what
    READ_MORE(numbers) reads through gdb.  Sorted by thread number."""
    by_num = dict((s.num, s) for s in snaps)
    out = list(snaps)
    again = []
    copied = 0
    refused = {}
    roles = {}      # how the copies' role objects were read: reg, mem, none
    names = getattr(groups.core, "names", {})   # a live process's thread names
    for rep_num, members in sorted(groups.groups.items()):
        rep = by_num.get(rep_num)
        witness = by_num.get(groups.witness(rep_num))
        rest = [n for n in members if n != rep_num and n not in by_num]
        why = _refusal(groups, rep, scanner) or _refusal(groups, witness, scanner)
        own = ("args",) if groups.own_args(rep_num) is not None else ()
        if why is None and not clones.alike(rep, witness, own):
            why = "gdb read two of its threads differently"
        if why is not None:
            again.extend(rest)
            refused[why] = refused.get(why, 0) + len(rest)
            continue
        rep_ct = groups.threads[rep_num]
        role_var = scanner.role_vars.get(rep_num)
        offset = (rep.global_num or rep.num) - rep.num
        for num in rest:
            ct = groups.threads[num]
            detail = None
            if role_var is not None:
                how = role_var[2][0]
                roles[how] = roles.get(how, 0) + 1
                if how != "none":
                    detail = _role_detail(groups, scanner, role_var, rep_ct, ct)
            copy = clones.clone(rep, num, ct.lwp, ct.sp(groups.machine), offset, detail,
                                groups.own_args(num) if own else None)
            copy.name = names.get(ct.lwp)
            out.append(copy)
            copied += 1
    if again:
        out.extend(read_more(sorted(again)))
    out.sort(key=lambda s: s.num)
    LAST[0] = {"threads": len(groups.threads), "groups": len(groups.groups),
               "read": len(out) - copied, "copied": copied, "why": refused,
               "roles": roles}
    return out


def _refusal(groups, rep, scanner):
    """Why REP's group is read through gdb, or None when it is copied."""
    if rep is None:
        return "gdb did not read its first thread"
    ct = groups.threads.get(rep.num)
    if ct is None or ct.lwp != rep.lwp:
        return "gdb's thread is not the core's"
    if not clones.same_frames(rep.frames, ct.pcs, rep.frames_truncated,
                              gdbtarget.STACK_BOTTOMS):
        return "gdb unwound its stack otherwise than the core reader"
    key = coregroups.group_key(ct, groups.machine)
    on_futex = key is not None and (groups.machine != coremem.EM_X86_64
                                    or key[2] is not None)
    role_var = scanner.role_vars.get(rep.num)
    needs_role = any(f.function in ROLE_OBJECT_FUNCTIONS for f in rep.frames)
    if needs_role and role_var is None:
        return "its role object is not read from memory or a register"
    why = clones.copyable(rep, on_futex, scanner.static_holds(rep), role_var)
    if why is None and role_var is not None and role_var[2][0] != "none":
        # read for the representative as for a copy: it must give what gdb read
        if _role_pointer(groups, role_var, ct, ct) != role_var[2][2]:
            why = "its role object's pointer is not where gdb read it"
    return why


def _role_pointer(groups, role_var, rep_ct, ct):
    """The role object pointer of thread CT, read where REP_CT's was."""
    _entry, index, where = role_var
    if where[0] == "reg":
        return groups.register(ct.num, index, where[1])
    slot = clones.role_slot(role_var, rep_ct.cfas, ct.cfas)
    raw = groups.core.read_stored(slot, 8) if slot is not None else None
    return int.from_bytes(raw, "little") if raw is not None else None


def _role_detail(groups, scanner, role_var, rep_ct, ct):
    ptr = _role_pointer(groups, role_var, rep_ct, ct)
    return scanner.role_label(role_var[0], ptr) if ptr else None
