"""The fast path's copies: what gdb read of one thread, given to the threads
of its group (``target/coregroups.py``: the same stack, return address for
return address, in the same system call on the same futex word).

A copy is made only when nothing gdb read of the representative could
differ for another thread of the group: frames, lines, roles, the lock or
queue a futex wait sleeps on and what the source holds are functions of
the return addresses and the futex word; the values of variables are not.
So a group is copied only when its representative's frames hold no lock
(no claims, no lock statement before any frame's line), no object
reference had to be read, no stack words were scanned (musl), and the
object a handle loop or plugin thread serves (its role detail) was read
from a variable in memory, which is then read at the same place in each
copy's own frame (the same offset from the frame's CFA).  Otherwise gdb
reads every thread of the group.  Pure logic: the gdb reads are callbacks.
"""

from ..model import Snapshot


def copyable(rep, group_has_futex, static_holds, role_var):
    """Why the snapshot REP cannot be copied to its group, or None when it
    can.  GROUP_HAS_FUTEX: the group key holds the futex word (the lock or
    queue a frame names for REP is then the same for every thread);
    STATIC_HOLDS: whether the source of REP's frames holds a lock;
    ROLE_VAR: where REP's role object was read from, or None."""
    if rep.claims:
        return "its frames hold locks"
    if static_holds:
        return "its source holds locks"
    if rep.refs:
        return "its object references were read"
    if rep.stack_calls:
        return "its stack words were scanned"
    if (rep.lock_call is not None or rep.queue_call is not None) and not group_has_futex:
        return "it waits on an object read from a variable"
    if rep.role_detail is not None and (role_var is None or role_var[2][0] == "none"):
        return "its role object is not read from memory or a register"
    return None


def role_slot(role_var, rep_cfas, member_cfas):
    """The address in a member's stack holding its role object's pointer:
    the representative's variable in memory (ROLE_VAR: entry, unwound
    frame index, ("mem", address, value)) moved by the difference of the
    two frames' CFAs; None when it is not in memory in that frame of the
    representative's stack."""
    _entry, index, where = role_var
    if where[0] != "mem" or index >= len(rep_cfas) or index >= len(member_cfas):
        return None
    addr = where[1]
    rep_cfa, member_cfa = rep_cfas[index], member_cfas[index]
    if not rep_cfa or not member_cfa:
        return None
    # the variable lies in that frame: below its CFA (or among the
    # arguments just above it), above the newer frame's CFA (this frame's
    # stack pointer)
    low = rep_cfas[index - 1] if index > 0 else None
    if addr >= rep_cfa + 64 or (low is not None and addr < low - 16) or addr < rep_cfa - (1 << 20):
        return None
    return member_cfa + (addr - rep_cfa)


def alike(a, b, own=()):
    """Whether gdb read snapshots A and B as the same but for the thread:
    the same frames and lines, state registers (but the stack pointer),
    waits and role detail read from the same place.  OWN: the register
    entries each thread keeps its own (not compared)."""
    def regs(s):
        return dict((k, v) for k, v in s.regs.items() if k != "sp" and k not in own)
    return ([(f.pc, f.function, f.file, f.line, f.log_name) for f in a.frames]
            == [(f.pc, f.function, f.file, f.line, f.log_name) for f in b.frames]
            and regs(a) == regs(b) and a.lock_call == b.lock_call
            and a.queue_call == b.queue_call and a.frames_truncated == b.frames_truncated
            and a.unanalysed == b.unanalysed and a.analysed_levels == b.analysed_levels)


def same_frames(frames, pcs, truncated, bottoms):
    """Whether gdb's FRAMES (model.FrameInfo, inlined ones included: they
    repeat their caller's pc) are the reader's PCS, pc for pc: all of them
    unless gdb stopped early, at its depth limit (TRUNCATED) or at the
    thread's start-up frame (read_frames ends there; the reader goes on to
    clone3 or _start; BOTTOMS: the names of those frames)."""
    seen = []
    for f in frames:
        if not seen or f.pc != seen[-1]:
            seen.append(f.pc)
    if not seen or tuple(seen) != tuple(pcs[:len(seen)]):
        return False
    return (truncated or len(seen) == len(pcs)
            or frames[-1].function in bottoms)


def clone(rep, num, lwp, sp, global_offset, role_detail, args=None):
    """A Snapshot of thread NUM (LWP, stack pointer SP) copied from REP;
    ARGS: its own system call arguments, where REP has some."""
    regs = dict(rep.regs)
    if "sp" in regs:
        regs["sp"] = sp
    if args is not None and "args" in regs:
        regs["args"] = args
    # the frames are the representative's list itself: nothing changes a
    # snapshot's frames once read
    snap = Snapshot(num, lwp, None, regs, rep.frames, rep.frames_truncated,
                    num + global_offset)
    snap.claims = []
    snap.refs = {}
    snap.refs_deferred = rep.refs_deferred
    snap.unanalysed = rep.unanalysed
    snap.analysed = rep.analysed
    snap.analysed_levels = rep.analysed_levels
    snap.role_detail = role_detail
    snap.lambda_lines = rep.lambda_lines
    snap.lock_call = rep.lock_call
    snap.stack_calls = ()
    snap.queue_call = rep.queue_call
    return snap
