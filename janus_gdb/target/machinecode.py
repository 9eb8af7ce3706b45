"""Locks held at a point of a function, read from its x86_64 machine code.

Pure logic over the instructions gdb disassembled (AT&T syntax); no gdb.
For frames that have no line info (a stripped Janus, a plugin without
debug info) ``codereader`` decodes the function around the frame's pc and
asks ``Code.held_at`` which locks its own calls took and did not release
on the way to the frame's current call.

Soundness rules (a false claim costs more than a gap):

- Basic blocks and their edges come from the jumps, conditional jumps and
  returns.  A jump through a register (a switch table) may go anywhere:
  every instruction becomes a block and the jump an edge to each.  An
  instruction that cannot be decoded gives up the whole function.
- A lock is held at a point when, on every path from the function's entry
  (a forward "must" data flow, intersection at joins), its lock call ran
  and no unlock of the same address followed; when only some paths took it
  ("may" data flow, union at joins), or the call was a trylock or a timed
  lock, the claim is conditional.  The point's own call is not counted (a
  thread waiting in ``g_mutex_lock`` does not hold that lock yet).
- Lock arguments (``%rdi``) are traced backwards within straight-line code
  to a constant address (``lea 0x..(%rip)``, ``mov $imm``), to a
  callee-saved register (``%rbx``, ``%rbp``, ``%r12``-``%r15``, or ``%rsp``
  for a lock on the stack) plus an offset, or to a pointer loaded from a
  stack slot (``mov 0x18(%rsp),%rdi``) in a function that never lets a
  stack address out; the register (and the slot) is read in the frame at
  the point (gdb applies the CFI).  A write to that register (a store to
  that slot) between the lock call and the point makes the lock's address
  unknown.
- A frame is *complete* (it may count as analysed, i.e. as proof that it
  holds nothing else) only when every lock call on a path to the point had
  its argument resolved and no call on such a path went to a function
  that could be a lock wrapper returning with a lock held (a function
  pointer, a local function not shown to be ``neutral`` through the
  ``lock_free`` callback).
  An incomplete frame still gives its claims.
- An unlock of a lock this function did not take on any path is reported
  as released (it cancels a caller frame's claim on the same address), for
  constant addresses only.
- A lock held on some paths only (a "may" claim) is reported only with a
  constant address: a register's value at the point names the lock only
  on the paths that took it.
- An unlock that may be of the same lock (an unresolved address, or
  another key that may alias it) ends the lock's claims, "may" ones too;
  the frame is then not complete (it may still hold it).
- Not modelled (known risks): a callee that releases a lock this frame took
  (an unlock wrapper); recursion counts of recursive mutexes; a lock reached
  through two different registers.
"""

import heapq

from .x86insn import (  # noqa: F401 (MAX_INSNS, Insn, decode: re-exported)
    CALLEE_SAVED, CALLER_SAVED, FRAME_REGS, IMM_RE, MAX_INSNS, DecodeError, Insn, decode,
    escapes_stack, mem, reg, stack_store)

MAX_ITERATIONS = 64          # data-flow passes over the blocks
MAX_TRACE = 256              # instructions walked back for one argument

# name -> (lock kind, mode, conditional)
LOCK_CALLS = {
    "g_mutex_lock": ("gmutex", None, False),
    "g_mutex_trylock": ("gmutex", None, True),
    "g_rec_mutex_lock": ("grecmutex", None, False),
    "g_rec_mutex_trylock": ("grecmutex", None, True),
    "pthread_mutex_lock": ("pthread_mutex", None, False),
    "pthread_mutex_trylock": ("pthread_mutex", None, True),
    "pthread_mutex_timedlock": ("pthread_mutex", None, True),
    "pthread_mutex_clocklock": ("pthread_mutex", None, True),
    "pthread_rwlock_wrlock": ("pthread_rwlock", None, False),
    "pthread_rwlock_rdlock": ("pthread_rwlock", "read", False),
    "pthread_rwlock_trywrlock": ("pthread_rwlock", None, True),
    "pthread_rwlock_tryrdlock": ("pthread_rwlock", "read", True),
    "pthread_rwlock_timedwrlock": ("pthread_rwlock", None, True),
    "pthread_rwlock_timedrdlock": ("pthread_rwlock", "read", True),
    "pthread_rwlock_clockwrlock": ("pthread_rwlock", None, True),
    "pthread_rwlock_clockrdlock": ("pthread_rwlock", "read", True),
    "g_rw_lock_writer_lock": ("grwlock", None, False),
    "g_rw_lock_reader_lock": ("grwlock", "read", False),
    "g_rw_lock_writer_trylock": ("grwlock", None, True),
    "g_rw_lock_reader_trylock": ("grwlock", "read", True),
}
UNLOCK_CALLS = frozenset((
    "g_mutex_unlock", "g_rec_mutex_unlock", "pthread_mutex_unlock", "pthread_rwlock_unlock",
    "g_rw_lock_writer_unlock", "g_rw_lock_reader_unlock"))
# the mutex (second argument) is released while the thread waits in them
COND_WAITS = frozenset((
    "g_cond_wait", "g_cond_wait_until", "g_cond_timed_wait", "pthread_cond_wait",
    "pthread_cond_timedwait", "pthread_cond_clockwait"))

# calls that never return: the next instruction belongs to another path
NORETURN_CALLS = frozenset((
    "abort", "exit", "_exit", "_Exit", "quick_exit", "pthread_exit", "__stack_chk_fail",
    "__assert_fail", "__assert_perror_fail", "__fortify_fail", "__chk_fail", "longjmp",
    "siglongjmp", "__longjmp_chk", "_Unwind_Resume", "__cxa_throw", "__cxa_rethrow",
    "__cxa_bad_cast", "__cxa_bad_typeid", "__cxa_throw_bad_array_new_length",
    "g_assertion_message", "g_assertion_message_expr", "g_assertion_message_cmpstr",
    "g_assertion_message_cmpnum", "g_assertion_message_error", "g_abort",
    "std::terminate", "_ZSt9terminatev"))

# functions whose effect the analysis knows, by name, however they are called
KNOWN_CALLS = frozenset(LOCK_CALLS) | UNLOCK_CALLS | COND_WAITS | NORETURN_CALLS


class Held(object):
    """A lock possibly held at a point."""
    __slots__ = ("key", "calls", "name", "kind", "mode", "conditional", "trylock")

    def __init__(self, key, calls, name, kind, mode, conditional, trylock):
        self.key = key            # ("abs", addr), ("reg", register, offset) or
        #                           ("slot", rsp|rbp, disp, offset): *(reg+disp) + offset
        self.calls = calls        # addresses of the lock calls that took it
        self.name = name          # the lock function, e.g. g_mutex_lock
        self.kind = kind
        self.mode = mode
        self.conditional = conditional
        self.trylock = trylock


class Result(object):
    """What ``Code.held_at`` found at one point."""
    __slots__ = ("held", "complete", "why", "waits_on", "released")

    def __init__(self, held, complete, why, waits_on=None, released=()):
        self.released = released  # keys of locks unlocked here that this code did not take
        self.held = held          # [Held]
        self.complete = complete  # see the module docstring
        self.why = why            # why not complete, for the record
        self.waits_on = waits_on  # key of the mutex a condition wait at the point releases


_TOP = None  # "every key" for the must set of a block not reached yet
_NONE = frozenset()


# may/must keys that are locks (not markers: rel, stale-rel, callee, ...)
_LOCK_KEYS = ("abs", "reg", "slot")


def _drop(may, keys):
    """MAY without the lock KEYS an unlock may have released (an unresolved
    one, or one through another key that may be the same lock): neither held
    nor surely released, they are no claim, and their lock calls are kept
    under ("dropped",) so that the frame does not count as analysed."""
    if not keys:
        return may
    may = dict(may)
    calls = may.get(("dropped",), frozenset())
    for k in keys:
        calls = calls | may.pop(k)
    may[("dropped",)] = calls
    return may


def may_alias(a, b):
    """Whether the lock keys A and B may be the same lock: an unlock of B
    ends an unconditional claim on A unless they are surely different."""
    if a == b:
        return True
    if a[0] == "abs" and b[0] == "abs":
        return False
    if a[0] == "reg" and b[0] == "reg" and a[1] == b[1]:
        return False
    if a[0] == "slot" and b[0] == "slot" and a[1:3] == b[1:3]:
        return False
    return True


class Code(object):
    """One function's instructions, its blocks, and its lock data flow.

    INSNS: decoded instructions (possibly several ranges: a function and its
    ``.cold`` fragments); ENTRY: the function's first address; NAME_OF(insn)
    gives the called function's name for a call or tail-call jump, or None
    when unknown."""

    def __init__(self, insns, entry, name_of, lock_free=None):
        self.insns = sorted(insns, key=lambda i: i.addr)
        self.index = dict((ins.addr, k) for k, ins in enumerate(self.insns))
        if entry not in self.index:
            raise DecodeError("entry 0x%x not decoded" % entry)
        self.entry = entry
        self.name_of = name_of
        # LOCK_FREE(insn): the call's target is a local function shown to
        # return with no lock taken or released (its Code is ``neutral``)
        self.lock_free = lock_free
        self.names = [name_of(ins) if ins.kind in ("call", "jmp") else None
                      for ins in self.insns]
        self._w = [None] * len(self.insns)
        self._blocks()
        self.in_const = None      # computed when an argument needs it
        self.stores = [stack_store(ins) for ins in self.insns]
        # slot keys only in functions that never let a stack address out:
        # then only their own stores can change a slot
        self.stack_escapes = any(escapes_stack(ins) for ins in self.insns)
        # %rbp-based slots only when %rbp is the frame pointer (else it may
        # point into the heap, where other pointers and callees write)
        e = self.index[entry]
        self.frame_pointer = any(i.mnem in ("mov", "movq") and i.ops == ["%rsp", "%rbp"]
                                 for i in self.insns[e:e + 8])
        self._call_ev = {}
        self._results = {}
        self._order = None

    # --- blocks ------------------------------------------------------------------

    def _next(self, k):
        ins = self.insns[k]
        n = k + 1
        if n < len(self.insns) and self.insns[n].addr == ins.addr + ins.length:
            return n
        return None

    def _blocks(self):
        insns = self.insns
        leaders = set([self.index[self.entry]])
        self.anywhere = False
        for k, ins in enumerate(insns):
            if ins.kind in ("jmp", "jcc"):
                if ins.indirect and ins.kind == "jmp":
                    self.anywhere = True
                elif ins.indirect:
                    raise DecodeError("conditional indirect jump at 0x%x" % ins.addr)
                if ins.target is not None and ins.target in self.index:
                    leaders.add(self.index[ins.target])
                elif ins.target is not None and self._inside(ins.target):
                    raise DecodeError("jump into an instruction at 0x%x" % ins.addr)
                if k + 1 < len(insns):
                    leaders.add(k + 1)
            elif (ins.kind == "ret" or self._noreturn(k)) and k + 1 < len(insns):
                leaders.add(k + 1)
        self.natural_leaders = frozenset(leaders)
        if self.anywhere:
            leaders = set(range(len(insns)))
        starts = sorted(leaders)
        self.block_of = [0] * len(insns)
        self.blocks = []          # [(first index, last index)]
        for b, s in enumerate(starts):
            e = (starts[b + 1] - 1) if b + 1 < len(starts) else len(insns) - 1
            self.blocks.append((s, e))
            for k in range(s, e + 1):
                self.block_of[k] = b
        nb = len(self.blocks)
        self.succ = [[] for _ in range(nb)]
        self.pred = [[] for _ in range(nb)]
        for b, (s, e) in enumerate(self.blocks):
            last = insns[e]
            out = []
            if last.kind == "ret" or self._noreturn(e):
                pass
            elif last.kind == "jmp":
                if last.indirect:
                    out = list(range(nb))
                elif last.target is not None and last.target in self.index:
                    out = [self.block_of[self.index[last.target]]]
                # else: a tail call (or a jump through the GOT): the function exits
            else:
                if last.kind == "jcc" and last.target in self.index:
                    out.append(self.block_of[self.index[last.target]])
                n = self._next(e)
                if n is not None:
                    out.append(self.block_of[n])
            for o in out:
                if o not in self.succ[b]:
                    self.succ[b].append(o)
                    self.pred[o].append(b)

    def writes(self, k):
        """Registers instruction K may write (cached)."""
        w = self._w[k]
        if w is None:
            w = self._w[k] = frozenset(self.insns[k].writes())
        return w

    def _noreturn(self, k):
        return self.insns[k].kind == "call" and self.names[k] in NORETURN_CALLS

    def _inside(self, addr):
        """ADDR falls inside a decoded instruction (not at its start)."""
        k = self._near(addr)
        return k > 0 and self.insns[k - 1].addr < addr < \
            self.insns[k - 1].addr + self.insns[k - 1].length

    def _near(self, addr):
        lo, hi = 0, len(self.insns)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.insns[mid].addr < addr:
                lo = mid + 1
            else:
                hi = mid
        return lo

    # --- constant callee-saved registers ---------------------------------------

    def _const_step(self, k, consts):
        """CONSTS ({callee-saved register: value}) after instruction K."""
        w = self.writes(k) & CALLEE_SAVED
        ins = self.insns[k]
        if not w:
            return consts
        consts = dict(consts)
        value = None
        ops = ins.ops
        if len(w) == 1 and len(ops) == 2 and ops[1].startswith("%r"):
            if ins.mnem in ("lea", "leaq"):
                value = ins.rip_target(ops[0])
            elif ins.mnem in ("mov", "movq"):
                im = IMM_RE.match(ops[0])
                if im:
                    value = int(im.group(1), 0) & ((1 << 64) - 1)
                elif ops[0].startswith("%r") and reg(ops[0]) in consts:
                    value = consts[reg(ops[0])]
        for r in w:
            consts.pop(r, None)
        if value is not None:
            consts[next(iter(w))] = value
        return consts

    def _constants(self):
        """Values of callee-saved registers that hold one constant address
        (``lea 0x..(%rip),%rbp``) at the start of each block."""
        nb = len(self.blocks)
        entry = self.block_of[self.index[self.entry]]
        self.in_const = [None] * nb
        self.in_const[entry] = {}   # unknown at the start (and after a jump back to it)
        out = [None] * nb
        order = self._rpo(entry)
        # only the instructions that write a callee-saved register matter
        self._cs_writes = [[k for k in range(s, e + 1) if self.writes(k) & CALLEE_SAVED]
                           for s, e in self.blocks]
        for _ in range(MAX_ITERATIONS):
            changed = False
            for b in order:
                if b != entry:
                    ins_ = [out[p] for p in self.pred[b] if out[p] is not None]
                    if not ins_:
                        continue
                    c = dict(ins_[0])
                    for o in ins_[1:]:
                        for r in list(c):
                            if o.get(r) != c[r]:
                                del c[r]
                    self.in_const[b] = c
                if self.in_const[b] is None:
                    continue
                c = self.in_const[b]
                for k in self._cs_writes[b]:
                    c = self._const_step(k, c)
                if c != out[b]:
                    out[b] = c
                    changed = True
            if not changed:
                break
        else:
            raise DecodeError("register constants do not settle")

    def const_before(self, k):
        if self.in_const is None:
            self._constants()
        b = self.block_of[k]
        c = self.in_const[b]
        if c is None:
            return {}
        for j in self._cs_writes[b]:
            if j >= k:
                break
            c = self._const_step(j, c)
        return c

    # --- lock events -------------------------------------------------------------

    def _call_event(self, k):
        """The lock effect of the call at instruction K (cached): a lock, an
        unlock, a call of an unknown function, or None."""
        if k in self._call_ev:
            return self._call_ev[k]
        ins = self.insns[k]
        name = self.names[k]
        e = None
        if name in LOCK_CALLS:
            kind, mode, cond = LOCK_CALLS[name]
            key = self.arg_key(k, "rdi")
            if key is None:
                key = ("unresolved", ins.addr)
            e = ("lock", key, name, kind, mode, cond)
        elif name in UNLOCK_CALLS:
            e = ("unlock", self.arg_key(k, "rdi"), name)
        elif name is None and not (self.lock_free is not None and self.lock_free(ins)):
            e = ("callee", ins.addr)
        self._call_ev[k] = e
        return e

    def _events(self, blocks):
        """(events {index: event}, events per block) of the instructions of
        BLOCKS: lock calls, unlocks, unknown callees, and the register writes
        and stack stores that can change the address of a lock in use."""
        ev = {}
        for b in blocks:
            s, e = self.blocks[b]
            for k in range(s, e + 1):
                if self.insns[k].kind == "call":
                    got = self._call_event(k)
                    if got is not None:
                        ev[k] = got
        regs = set()
        slots = False
        for e in ev.values():
            if e[0] in ("lock", "unlock") and e[1] is not None:
                if e[1][0] in ("reg", "slot"):
                    regs.add(e[1][1])
                slots = slots or e[1][0] == "slot"
        if regs:
            for b in blocks:
                s, e = self.blocks[b]
                for k in range(s, e + 1):
                    if k in ev:
                        continue
                    writes = self.writes(k) & regs
                    store = self.stores[k] if slots else None
                    if writes or store is not None:
                        ev[k] = ("write", frozenset(writes), store)
        per_block = {}
        for k in sorted(ev):
            per_block.setdefault(self.block_of[k], []).append(k)
        return ev, per_block

    def _ancestors(self, b):
        """The blocks from which block B can be reached, B included."""
        seen = set([b])
        todo = [b]
        while todo:
            for p in self.pred[todo.pop()]:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen

    def arg_key(self, k, register):
        """The value of REGISTER just before instruction K, as a key:
        ("abs", address) or ("reg", callee-saved register, offset), or None."""
        key = self._trace(k, register)
        if key is not None and key[0] == "reg" and key[1] in CALLEE_SAVED:
            value = self.const_before(k).get(key[1])
            if value is not None:
                return ("abs", (value + key[2]) & ((1 << 64) - 1))
        return key

    def _trace(self, k, register):
        cur = register
        off = 0
        fallback = None
        written = set()
        stores = []
        steps = 0
        j = k - 1
        b = self.block_of[k]
        start = self.blocks[b][0]
        if self.anywhere:
            # every instruction is a block for the data flow (a switch may jump
            # anywhere); arguments are traced within the straight-line code
            # between jumps and jump targets, where a compiler's switch never lands
            start = k
            while start > 0 and start not in self.natural_leaders and \
                    self.insns[start - 1].kind not in ("jmp", "jcc", "ret") and \
                    k - start < MAX_TRACE:
                start -= 1
        while steps < MAX_TRACE:
            steps += 1
            if j < start:
                preds = self.pred[b]
                if len(preds) != 1 or self.blocks[b][0] == self.index[self.entry] \
                        or self.anywhere:
                    break
                b = preds[0]
                start, j = self.blocks[b]
                continue
            ins = self.insns[j]
            w = self.writes(j)
            if ins.kind == "call" and cur in CALLER_SAVED:
                return fallback
            if self.stores[j] is not None:
                stores.append(self.stores[j])
            if cur not in w:
                written |= w
                j -= 1
                continue
            mn = ins.mnem
            ops = ins.ops
            got = None
            if mn in ("lea", "leaq") and len(ops) == 2:
                mm = mem(ops[0])
                if mm is not None and mm[2] is None and mm[1] == "rip":
                    return ("abs", (ins.addr + ins.length + mm[0] + off) & ((1 << 64) - 1))
                if mm is not None and mm[2] is None and mm[1] is not None:
                    got = (mm[1], off + mm[0])
            elif mn in ("mov", "movq") and len(ops) == 2 and ops[1].startswith("%r"):
                im = IMM_RE.match(ops[0])
                if im:
                    return ("abs", (int(im.group(1), 0) + off) & ((1 << 64) - 1))
                src = reg(ops[0])
                if src is not None and ops[0].startswith("%r") and \
                        not ops[0].endswith(("d", "w", "b")):
                    got = (src, off)
                mm = mem(ops[0])
                if mm is not None and mm[2] is None and not ops[1].endswith(("d", "w", "b")) \
                        and (mm[1] == "rsp" or (mm[1] == "rbp" and self.frame_pointer)):
                    # a pointer loaded from a stack slot still unchanged at the call
                    base, disp = mm[1], mm[0]
                    if not self.stack_escapes and base not in written and not any(
                            sb != base or abs(sd - disp) < 8 for sb, sd in stores):
                        return ("slot", base, disp, off)
                    return fallback
            elif mn in ("mov", "movl") and len(ops) == 2 and ops[1].startswith("%e"):
                im = IMM_RE.match(ops[0])
                if im and int(im.group(1), 0) >= 0:
                    return ("abs", (int(im.group(1), 0) + off) & ((1 << 64) - 1))
            elif mn in ("add", "addq", "sub", "subq") and len(ops) == 2 and \
                    reg(ops[1]) == cur and ops[1].startswith("%r"):
                im = IMM_RE.match(ops[0])
                if im:
                    delta = int(im.group(1), 0)
                    got = (cur, off + (delta if mn.startswith("add") else -delta))
            if got is None:
                return fallback
            written |= w - set([cur])
            cur, off = got
            if cur in FRAME_REGS and cur not in written and fallback is None:
                fallback = ("reg", cur, off)
            j -= 1
        if cur in FRAME_REGS and cur not in written:
            return fallback or ("reg", cur, off)
        return fallback

    # --- data flow ----------------------------------------------------------------

    @staticmethod
    def _apply(ev, must, may, at):
        """Effect of one event on (must set or _TOP, may dict); returns new pair."""
        kind = ev[0]
        if kind == "write":
            regs, store = ev[1], ev[2]

            def hit(key):
                if key[0] == "rel":
                    key = key[1:]
                if key[0] == "reg":
                    return key[1] in regs
                if key[0] == "slot":
                    return key[1] in regs or (store is not None and (
                        store[0] != key[1] or abs(store[1] - key[2]) < 8))
                return False
            if not any(hit(k) for k in may) and \
                    (must is _TOP or not any(hit(k) for k in must)):
                return must, may

            def stale(key):
                if hit(key):
                    return ("stale-rel",) if key[0] == "rel" else ("stale",) + key[1:]
                return key
            if must is not _TOP:
                must = frozenset(stale(k) for k in must)
            nmay = {}
            for k, v in may.items():
                nk = stale(k)
                nmay[nk] = nmay.get(nk, frozenset()) | v
            return must, nmay
        if kind == "lock":
            key, cond = ev[1], ev[5]
            may = dict(may)
            may[key] = may.get(key, frozenset()) | frozenset([at])
            may.pop(("rel",) + key, None)
            if must is not _TOP:
                must = must | frozenset([key])
            return must, may
        if kind == "unlock":
            key = ev[1]
            if key is None:
                # any lock may be the one released (a caller's too): no lock
                # taken before stays a claim, not even a conditional one
                may = _drop(may, [k for k in may if k[0] in _LOCK_KEYS])
                may[("unresolved-unlock",)] = _NONE
                return (frozenset() if must is not _TOP else _TOP), may
            if key not in may:
                # not taken here on any path: a lock its caller took, whose
                # claim this cancels
                may = dict(may)
                may[("rel",) + key] = may.get(("rel",) + key, frozenset()) | frozenset([at])
            if must is not _TOP:
                must = frozenset(k for k in must if not may_alias(k, key))
            if ev[2] != "g_rec_mutex_unlock":
                # the lock it may release is no claim on any path any more
                # (a lock taken through a constant and released through a
                # register holding the same address: two keys, one lock)
                if key in may:
                    may = dict(may)
                    del may[key]
                may = _drop(may, [k for k in may if k[0] in _LOCK_KEYS and may_alias(k, key)])
            return must, may
        if kind == "callee":
            if ("callee",) not in may:
                may = dict(may)
                may[("callee",)] = _NONE
            return must, may
        return must, may

    def _transfer(self, events, ks, must, may, stop=None):
        for k in ks:
            if stop is not None and k >= stop:
                break
            must, may = self._apply(events[k], must, may, self.insns[k].addr)
        return must, may

    def _flow(self, blocks, events, per_block):
        """Worklist data flow over BLOCKS (those that reach the point), in
        reverse post-order: {block: (must, may)} at the start of each."""
        entry = self.block_of[self.index[self.entry]]
        if self._order is None:
            self._order = self._rpo(entry)
            self._rank = dict((b, i) for i, b in enumerate(self._order))
        order, rank = self._order, self._rank
        state_in = {entry: (frozenset(), {})}
        out = {}
        pending = set([entry])
        heap = [rank[entry]]
        budget = MAX_ITERATIONS * max(1, len(blocks))
        none = ()
        while heap:
            budget -= 1
            if budget < 0:
                raise DecodeError("lock data flow does not settle")
            b = order[heapq.heappop(heap)]
            pending.discard(b)
            if b != entry or self.pred[b]:
                preds = [out[p] for p in self.pred[b] if p in out]
                if b == entry:      # the function's start, and jumps back to it
                    preds.append((frozenset(), {}))
                if not preds:
                    continue
                if len(preds) == 1:
                    must, may = preds[0]
                else:
                    must = _TOP
                    for m, _ in preds:
                        if m is not _TOP:
                            must = m if must is _TOP else must & m
                    may = dict(preds[0][1])
                    for _, m in preds[1:]:
                        for k, v in m.items():
                            old = may.get(k)
                            may[k] = v if old is None else (old | v)
                state_in[b] = (must, may)
            must, may = state_in[b]
            new = self._transfer(events, per_block.get(b, none), must, may)
            if new != out.get(b):
                out[b] = new
                for succ in self.succ[b]:
                    if succ in blocks and succ not in pending and succ in rank:
                        pending.add(succ)
                        heapq.heappush(heap, rank[succ])
        return state_in

    def _rpo(self, entry):
        seen = set([entry])
        post = []
        stack = [(entry, iter(self.succ[entry]))]
        while stack:
            b, it = stack[-1]
            for s in it:
                if s not in seen:
                    seen.add(s)
                    stack.append((s, iter(self.succ[s])))
                    break
            else:
                post.append(b)
                stack.pop()
        return list(reversed(post))

    # --- queries --------------------------------------------------------------------

    def point_of(self, pc, caller):
        """Index of the instruction the frame is at: for a caller frame (PC is
        a return address) the call before PC, else PC itself; None if none."""
        if not caller:
            return self.index.get(pc)
        for k in range(max(0, self._near(pc) - 1), min(len(self.insns), self._near(pc) + 1)):
            ins = self.insns[k]
            if ins.addr + ins.length == pc and ins.kind == "call":
                return k
        return None

    def held_at(self, k):
        """Result at instruction index K (before it runs); cached."""
        got = self._results.get(k)
        if got is None:
            try:
                got = self._held_at(k)
            except DecodeError as exc:   # cached too: thousands of threads may stop here
                got = Result([], False, str(exc))
            self._results[k] = got
        return got

    def _state_at(self, k):
        """(must, may, lock events by address) before instruction K, or None
        when K cannot be reached from the entry in the decoded code."""
        b = self.block_of[k]
        blocks = self._ancestors(b)
        if self.block_of[self.index[self.entry]] not in blocks:
            return None
        events, per_block = self._events(blocks)
        state = self._flow(blocks, events, per_block)
        if b not in state:
            return None
        must, may = self._transfer(events, per_block.get(b, ()), state[b][0], state[b][1],
                                   stop=k)
        if must is _TOP:
            must = frozenset()
        return must, may, events

    def neutral(self):
        """True when the function, called, returns with no lock taken or
        released by it on any path (it may lock and unlock inside): every
        return and tail call is reached with nothing possibly held or
        released, every lock call's address was known, and no call went to a
        function that could be a lock wrapper (``LOCK_FREE``)."""
        if self.anywhere:
            return False                  # a jump through a register: a tail call?
        exits = []
        for k, ins in enumerate(self.insns):
            if ins.kind == "ret":
                exits.append(k)
            elif ins.kind == "jmp" and ins.target not in self.index:
                name = self.names[k]
                if name in LOCK_CALLS or name in UNLOCK_CALLS or name in COND_WAITS:
                    return False
                if name is None and not (self.lock_free is not None and ins.target is not None
                                         and self.lock_free(ins)):
                    return False          # a tail call of a function that may lock
                exits.append(k)
        for k in exits:
            got = self._state_at(k)
            if got is None:
                continue                  # not reachable: not a way out
            if got[1]:
                return False
        return True

    def _held_at(self, k):
        got = self._state_at(k)
        if got is None:
            return Result([], False, "the point is not reachable in the decoded code")
        must, may, events = got
        held = []
        released = []
        why = []
        ev_of = dict((self.insns[j].addr, e) for j, e in events.items() if e[0] == "lock")
        for key, calls in sorted(may.items(), key=lambda kv: min(kv[1] or [0])):
            if key[0] == "callee":
                why.append("calls a function that is not a known import (it could be a "
                           "lock wrapper)")
                continue
            if key[0] in ("stale-rel", "unresolved-unlock"):
                continue
            if key[0] == "dropped":
                why.append("a lock taken at %s may have been released by an unlock of a "
                           "lock that may be the same one" % ",".join(
                               "0x%x" % a for a in sorted(calls)[:3]))
                continue
            if key[0] == "rel":
                # a register's value names the lock only on the paths that
                # unlocked it: only constant addresses are sure on every path
                if key[1] == "abs":
                    released.append(key[1:])
                continue
            if key[0] in ("unresolved", "stale"):
                why.append("the address of a lock taken at %s is not known at the point" %
                           ",".join("0x%x" % a for a in sorted(calls)[:3]))
                continue
            evs = [ev_of[a] for a in calls if a in ev_of]
            if not evs:
                continue
            if key[0] != "abs" and key not in must:
                # held on some paths only: on the path taken the register (or
                # slot) may hold something else; its value is no address
                why.append("a lock taken on some paths at %s has an address not known on "
                           "the path taken" % ",".join("0x%x" % a for a in sorted(calls)[:3]))
                continue
            trylock = all(e[5] for e in evs)
            name = evs[0][2]
            held.append(Held(key, tuple(sorted(calls)), name, evs[0][3], evs[0][4],
                             key not in must, trylock))
        waits_on = None
        ins = self.insns[k]
        if ins.kind == "call" and self.names[k] in COND_WAITS:
            waits_on = self.arg_key(k, "rsi")
            if waits_on is None:
                # any of them may be the mutex released while waiting: no claim
                why.append("a condition wait releases a mutex whose address is not known")
                held = []
            else:
                held = [h for h in held if h.key != waits_on]
        return Result(held, not why, "; ".join(why) or None, waits_on, released)
