"""Which locks each frame holds, read from its source and evaluated in the frame.

For every application frame with line info whose source file is readable,
``locksets.SourceFile`` lists the lock calls executed on the path from the
function's entry to the frame's current line (and not undone); each lock
expression is evaluated in that frame to an address.  Evaluation is
read-only: only expressions made of names, ``->``, ``.``, ``&``, ``*`` and
constant subscripts are evaluated, so no function of the target can run.
"""

import os
import re

import gdb  # pylint: disable=import-error

from ..csource import locksets
from ..model import Claim

# What gdb may evaluate: no calls, no assignments, no operators with effects.
SAFE_EXPR_RE = re.compile(
    r"^[&*]*\(*[&*]*[A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*|\[\w+\]|\))*$")
_BASE_RE = re.compile(r"^[&*(]*([A-Za-z_]\w*)")
_FIELD_RE = re.compile(r"(?:->|\.)([A-Za-z_]\w*)\)*$")

MAX_SOURCE_BYTES = 16 << 20
# a lock expression that evaluates below this address went through a NULL pointer
NULL_PAGE = 4096


class Sources(object):
    """Source files read once per analysis: fullname -> SourceFile or None."""

    def __init__(self):
        self._files = {}
        self.missing = set()

    def get(self, fullname):
        if fullname in self._files:
            return self._files[fullname]
        src = None
        try:
            if os.path.getsize(fullname) <= MAX_SOURCE_BYTES:
                with open(fullname, "rb") as f:
                    src = locksets.LazySourceFile(f.read().decode("utf-8", "replace"))
        except (OSError, IOError, ValueError):
            src = None
        if src is None:
            self.missing.add(fullname)
        self._files[fullname] = src
        return src


def _strip(t):
    for _ in range(16):
        if t.code != gdb.TYPE_CODE_TYPEDEF:
            return t
        t = t.target()
    return t


_REF_CODES = tuple(getattr(gdb, n) for n in ("TYPE_CODE_REF", "TYPE_CODE_RVALUE_REF")
                   if hasattr(gdb, n))


def _struct_name(t):
    """Tag or typedef name of the struct T points to (or is)."""
    try:
        for _ in range(4):
            s = _strip(t)
            if s.code == gdb.TYPE_CODE_PTR:
                t = s.target()
                continue
            if s.code == gdb.TYPE_CODE_STRUCT:
                return s.tag or t.name
            return None
    except (gdb.error, RuntimeError):
        return None
    return None


def evaluate(frame, expr, kind_of_type):
    """(address, lock kind, None) or (None, None, why) for EXPR in FRAME."""
    if not SAFE_EXPR_RE.match(expr):
        return None, None, "not a plain lock expression"
    try:
        frame.select()
        value = gdb.parse_and_eval(expr)
        if value.is_optimized_out:
            return None, None, "optimized out"
        return value_lock(value, kind_of_type)
    except gdb.MemoryError:
        return None, None, "memory unreadable"
    except (gdb.error, RuntimeError, ValueError, OverflowError) as exc:
        text = str(exc)
        if "optimized out" in text:
            return None, None, "optimized out"
        return None, None, text.split("\n")[0][:80]


def value_lock(value, kind_of_type):
    """(address, lock kind, None) of the lock the gdb.Value VALUE is, refers
    to, points to or guards (a libstdc++ guard), or (None, None, "not an
    lvalue").  gdb errors propagate to the caller."""
    t = _strip(value.type)
    if t.code in _REF_CODES:    # a C++ reference: the object it refers to
        value = value.referenced_value()
        t = _strip(value.type)
    if t.code == gdb.TYPE_CODE_PTR:
        return int(value) & ((1 << 64) - 1), kind_of_type(t.target()), None
    value, t = _guarded_mutex(value, t)
    if t.code == gdb.TYPE_CODE_PTR:
        return int(value) & ((1 << 64) - 1), kind_of_type(t.target()), None
    addr = value.address
    if addr is None:
        return None, None, "not an lvalue"
    return int(addr), kind_of_type(value.type), None


# libstdc++ guards: the field that points to (or refers to) their mutex
_GUARD_FIELDS = (("std::unique_lock<", "_M_device"), ("std::shared_lock<", "_M_pm"),
                 ("std::lock_guard<", "_M_device"))


def _guarded_mutex(value, t):
    """A guard object passed along (``void f(std::unique_lock<std::mutex> &lk)
    { lk.unlock(); }``) stands for its mutex: its pointer field (read, never
    called).  Other values are returned as they are."""
    name = t.name or getattr(t, "tag", None) or ""
    for prefix, field in _GUARD_FIELDS:
        if name.startswith(prefix):
            inner = value[field]
            it = _strip(inner.type)
            if it.code in _REF_CODES:
                inner = inner.referenced_value()
                it = _strip(inner.type)
            return inner, it
    return value, t


def _base_type(frame, expr):
    """(struct type name, lock field) of EXPR's base variable, for a match by
    type when the value itself is optimized out."""
    m = _BASE_RE.match(expr)
    f = _FIELD_RE.search(expr)
    if not m or not f:
        return None, None
    try:
        sym = gdb.lookup_symbol(m.group(1), frame.block())[0]
    except (gdb.error, RuntimeError):
        return None, f.group(1)
    if sym is None:
        return None, f.group(1)
    try:
        return _struct_name(sym.type), f.group(1)
    except (gdb.error, RuntimeError):
        return None, f.group(1)


def _start_line(frame, fn, sal):
    """The line of FRAME's function head, or None when gdb's is not it: an
    inlined function's symbol carries the line (and file) of its call, a
    lambda's operator() may have none (g++ -O0)."""
    if not fn.line:
        return None
    try:
        if getattr(gdb, "INLINE_FRAME", None) is not None and frame.type() == gdb.INLINE_FRAME:
            return None
        if fn.symtab is not None and fn.symtab.filename != sal.symtab.filename:
            return None
    except (gdb.error, RuntimeError):
        return None
    return fn.line


def _frame_lockset(frame, sources):
    """(function name, source file basename, current line, LockSet) of FRAME;
    None when it has no source to read; () when its source is unreadable."""
    try:
        fn = frame.function()
        sal = frame.find_sal()
    except (gdb.error, RuntimeError):
        return None
    if fn is None or sal is None or sal.symtab is None or not sal.line:
        return None
    try:
        fullname = sal.symtab.fullname()
    except (gdb.error, RuntimeError):
        return ()
    src = sources.get(fullname)
    if src is None:
        return ()
    try:
        newer = frame.newer()
        callee = locksets.callee_token(newer.name()) if newer is not None else None
    except (gdb.error, RuntimeError):
        callee = None
    lockset = src.held_at(_start_line(frame, fn, sal), sal.line, callee,
                          locksets.is_lambda_name(fn.name))
    if not lockset.valid:
        return None
    name = fn.name
    if lockset.lambda_line:
        name = "the lambda of line %d" % lockset.lambda_line
    return name, os.path.basename(sal.symtab.filename), sal.line, lockset


def _cxx_call(held):
    """Was HELD read from a C++ member call or guard (not a C lock function)?"""
    return held.call.startswith("std::") or held.call.endswith("()")


def frame_claims(frame, info, sources, kind_of_type, cache=None, evaluator=None):
    """Claims of one frame (``model.FrameInfo`` INFO), or None when its source
    cannot be read (the frame is then not analysed).

    CACHE ({FrameInfo: lockset data}) shares the source analysis of the
    frames stopped at the same place: threads in the same call chain share
    one FrameInfo object (``gdbtarget._frame_info``).  Only the evaluation of
    the lock expressions is done per frame, and only when the source holds
    a lock.  EVALUATOR(frame, expr, kind_of_type) replaces ``evaluate``
    (a frame found on the stack has no registers to evaluate in)."""
    evaluator = evaluator or evaluate
    if cache is not None and info in cache:
        got = cache[info]
    else:
        got = _frame_lockset(frame, sources)
        if cache is not None:
            cache[info] = got
    if got is None:
        return []
    if got == ():
        return None
    fn_name, fname, cur_line, lockset = got
    if not lockset.held and not lockset.released:
        return []
    claims = []
    func = fn_name if lockset.lambda_line else (info.function or fn_name)
    for held, released in [(h, False) for h in lockset.held] + \
            [(h, True) for h in lockset.released]:
        addr, kind, why = evaluator(frame, held.expr, kind_of_type)
        if addr is None and held.guard and _cxx_call(held):
            # `std::unique_lock<std::mutex> left(forks_[id])` with `id`
            # optimized out (gcc 10 at -O2): the guard still points to its
            # mutex (_M_device), read like any guard value; a guard that
            # points to no lock type (std::scoped_lock) gives nothing
            g_addr, g_kind, _why = evaluator(frame, held.guard, kind_of_type)
            if g_addr is not None and g_kind is not None:
                addr, kind, why = g_addr, g_kind, None
        if addr is not None and kind is None and _cxx_call(held):
            continue    # obj.lock() on something that is no lock (a weak_ptr, a guard)
        type_name = field = None
        if addr is not None and addr < NULL_PAGE:
            # `p->mutex` after `p = NULL` (the lock went on through another
            # pointer, or was never this frame's): no lock lives there, and
            # no match by type either; the claim stays, with no address
            why = "its pointer is NULL here (%s evaluates to 0x%x)" % (held.expr, addr)
            addr, kind = None, None
        else:
            # evaluated too: an address where no held lock is may be a stale
            # location list, and the claim then still matches by type
            # (infer.Coverage, infer._typed_claims)
            type_name, field = _base_type(frame, held.expr)
        claims.append(Claim(info.level, func, fname, held.line, held.raw,
                            addr, kind, type_name, field, held.conditional, held.trylock,
                            released, why, cur_line,
                            mode=held.mode or ("read" if held.call in locksets.READ_LOCK_CALLS
                                               else None),
                            origin=getattr(frame, "origin", "source")))
    return claims


# Lock calls whose waits sleep on another address than their argument: a
# rwlock's waiters sleep on one of its words, a GRWLock's on the
# pthread_rwlock_t glib allocated for it.
WAIT_CALLS = frozenset(locksets.RWLOCK_LOCK_CALLS + locksets.RWLOCK_TRYLOCK_CALLS)


def frame_lock_call(frame, sources, kind_of_type, names=WAIT_CALLS):
    """(address, lock kind, expression) of the lock the call on FRAME's
    current line takes (one of NAMES), evaluated in the frame; None when
    the line has no such call or it cannot be evaluated."""
    try:
        sal = frame.find_sal()
        if sal is None or sal.symtab is None or not sal.line:
            return None
        fullname = sal.symtab.fullname()
    except (gdb.error, RuntimeError):
        return None
    src = sources.get(fullname)
    if src is None or not hasattr(src, "lock_call_at"):
        return None
    got = src.lock_call_at(sal.line, names)
    if got is None:
        return None
    _name, expr, raw = got
    addr, kind, _why = evaluate(frame, expr, kind_of_type)
    if addr is None:
        return None
    return addr, kind, raw
