"""Lock claims of a caller found on the stack, where gdb cannot unwind.

On x86_64 gdb stops unwinding inside musl's wait functions (no unwind
tables), so the application frames are not frames.  ``target.stackwords``
finds return addresses among the stack words above the stack pointer;
those that continue gdb's frames as one call chain (``classify.
stack_chain``: each word's call instruction calls the function of the one
before it, directly) are the callers, with good evidence: a stale word
would have to point right after a call of exactly the function below it.
Each caller's source is read like a frame's (``lockset``), but
with no registers a lock expression is evaluated only when it is a plain
name of static storage (``&lock_a``, a global or file-static variable, or
a function's static), looked up in the caller's own scope; anything else
(a local, a field of a pointer) is not evaluated and the caller counts as
not analysed.  The claims say where the caller was found.
"""

import re

import gdb  # pylint: disable=import-error

from . import classify
from . import lockset
from ..model import FrameInfo

_PLAIN_RE = re.compile(r"^\s*(&?)\s*([A-Za-z_]\w*)\s*$")
ORIGIN = "stack-word"


class _Named(object):
    """A stand-in for the newer frame: only its name (the callee) is asked."""

    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name


class StackFrame(object):
    """The gdb.Frame methods lockset uses, for a caller known only by the
    return address PC found at stack address SLOT; CALLEE: the function its
    call instruction calls."""

    origin = ORIGIN

    def __init__(self, pc, slot, callee):
        self.pc_ = pc
        self.slot = slot
        self.callee = callee
        self._block = gdb.block_for_pc(pc - 1)

    def block(self):
        if self._block is None:
            raise gdb.error("no block at 0x%x" % self.pc_)
        return self._block

    def function(self):
        b = self._block
        while b is not None and b.function is None:
            b = b.superblock
        return b.function if b is not None else None

    def find_sal(self):
        return gdb.find_pc_line(self.pc_ - 1)

    def newer(self):
        return _Named(self.callee)

    def type(self):
        return gdb.NORMAL_FRAME

    def pc(self):
        return self.pc_


def static_evaluate(frame, expr, kind_of_type):
    """lockset.evaluate for a StackFrame: a plain name (or its address) of
    static storage, looked up in the caller's scope; else (None, None, why)."""
    m = _PLAIN_RE.match(expr)
    if not m:
        return None, None, "not a plain variable name (no registers to evaluate it with)"
    amp, name = m.groups()
    try:
        sym = gdb.lookup_symbol(name, frame.block())[0]
        if sym is None:
            return None, None, "no symbol %s in its scope" % name
        if sym.addr_class != gdb.SYMBOL_LOC_STATIC:
            return None, None, "%s is not static storage (no registers to read it)" % name
        value = sym.value()
        if amp:
            value = value.address
            if value is None:
                return None, None, "not an lvalue"
        return lockset.value_lock(value, kind_of_type)
    except gdb.MemoryError:
        return None, None, "memory unreadable"
    except (gdb.error, RuntimeError, ValueError, OverflowError) as exc:
        return None, None, str(exc).split("\n")[0][:80]


def stack_claims(snap, sources, kind_of_type):
    """Claims of the application callers found on SNAP's stack
    (classify.stack_chain: the return addresses that continue gdb's frames
    as one call chain), each caller's source read like a frame's and its
    lock expressions evaluated statically (claims whose expression could
    not be are left out).  Their levels follow the unwound frames."""
    claims = []
    chain = classify.stack_chain(snap.frames, snap.stack_calls)
    for k, c in enumerate(chain):
        if not (c.file and c.line):
            continue
        try:
            frame = StackFrame(c.pc, c.slot, c.callee)
        except (gdb.error, RuntimeError):
            continue
        if frame.function() is None:
            continue
        info = FrameInfo(len(snap.frames) + k, c.pc, c.function, c.file, c.line, c.lib, False)
        got = lockset.frame_claims(frame, info, sources, kind_of_type,
                                   evaluator=static_evaluate)
        for cl in got or ():
            if cl.addr is not None:
                cl.code = {"pc": c.pc, "slot": c.slot, "callee": c.callee}
                claims.append(cl)
    return claims
