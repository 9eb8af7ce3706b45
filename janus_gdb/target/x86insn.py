"""x86_64 instructions as gdb disassembles them (AT&T syntax): mnemonic,
operands, jump and call targets, the registers an instruction may write,
its stores into stack slots.  Pure logic; no gdb.  Used by ``machinecode``.
"""

import re
import sys

MAX_INSNS = 100000

CALLEE_SAVED = frozenset(("rbx", "rbp", "r12", "r13", "r14", "r15"))
FRAME_REGS = CALLEE_SAVED | frozenset(("rsp",))
CALLER_SAVED = frozenset(("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"))

_PREFIXES = frozenset(("lock", "rep", "repz", "repe", "repnz", "repne", "bnd", "notrack",
                       "data16", "data32", "addr32", "cs", "ds", "es", "ss", "fs", "gs",
                       "rex", "rex.w", "rex.W", "rex.b", "rex.r", "rex.x", "{disp32}",
                       "{vex}", "{evex}", "xacquire", "xrelease"))
_NO_DEST = frozenset(("cmp", "test", "push", "call", "jmp", "bt", "nop", "ucomiss", "ucomisd",
                      "comiss", "comisd", "ret", "prefetcht0", "prefetcht1", "prefetcht2",
                      "prefetchnta", "prefetchw", "clflush", "ptest", "vptest", "out",
                      "endbr64", "hlt", "ud2", "int3", "lfence", "mfence", "sfence", "pause",
                      "cmpl", "cmpq", "cmpb", "cmpw", "testl", "testq", "testb", "testw",
                      "pushq", "pushl", "callq", "jmpq", "retq", "btl", "btq", "nopw", "nopl",
                      "xbegin", "xend", "leave", "leaveq", "verw", "cpuid"))

_REGS = {}


def _init_regs():
    for n in ("a", "b", "c", "d"):
        for alias in ("r%sx" % n, "e%sx" % n, "%sx" % n, "%sl" % n, "%sh" % n):
            _REGS[alias] = "r%sx" % n
    for n in ("si", "di", "bp", "sp"):
        for alias in ("r" + n, "e" + n, n, n + "l"):
            _REGS[alias] = "r" + n
    for i in range(8, 16):
        for suf in ("", "d", "w", "b", "l"):
            _REGS["r%d%s" % (i, suf)] = "r%d" % i
    _REGS["rip"] = "rip"


_init_regs()

_MEM_RE = re.compile(r"^(?:%[a-z]s:)?(-?0x[0-9a-f]+|-?\d+)?\((%\w+)?(?:,(%\w+)(?:,(\d))?)?\)$")
IMM_RE = re.compile(r"^\$(-?0x[0-9a-f]+|-?\d+)$")
_SYM_RE = re.compile(r"<([^<>]*)>")
_HEX_RE = re.compile(r"^(0x[0-9a-f]+)$")


class DecodeError(Exception):
    pass


def reg(op):
    """Canonical 64-bit register of the operand OP (``%ebx`` -> ``rbx``), or None."""
    if op.startswith("%"):
        return _REGS.get(op[1:])
    return None


def mem(op):
    """(disp, base register, index register) of a memory operand, or None."""
    m = _MEM_RE.match(op)
    if not m:
        return None
    disp = int(m.group(1), 0) if m.group(1) else 0
    base = _REGS.get(m.group(2)[1:]) if m.group(2) else None
    index = _REGS.get(m.group(3)[1:]) if m.group(3) else None
    if (m.group(2) and base is None) or (m.group(3) and index is None):
        return None
    return disp, base, index


_OPS_RE = re.compile(r"(?:[^,(]|\([^)]*\))+")


def _split_ops(text):
    """Operands of TEXT: commas inside parentheses do not split."""
    if "(" not in text:
        return [op.strip() for op in text.split(",")]
    return [op.strip() for op in _OPS_RE.findall(text)]


class Insn(object):
    """One decoded instruction."""
    __slots__ = ("addr", "length", "mnem", "ops", "target", "sym", "slot", "indirect",
                 "kind")

    def __init__(self, addr, length, asm):
        self.addr = addr
        self.length = length
        self.target = None      # direct call/jump target
        self.sym = None         # gdb's <symbol> of the target
        self.slot = None        # call/jmp *disp(%rip): the address of the pointer
        self.indirect = False   # call/jmp through a register or other memory
        body = asm.split("#", 1)[0].strip()
        words = body.split()
        while words and words[0] in _PREFIXES:
            words.pop(0)
        if not words or words[0] == "(bad)" or "(bad)" in body:
            raise DecodeError("undecodable instruction at 0x%x" % addr)
        self.mnem = sys.intern(words[0])
        rest = " ".join(words[1:])
        m = _SYM_RE.search(rest)
        if m:
            self.sym = m.group(1)
            rest = rest[:m.start()].strip()
        self.ops = _split_ops(rest) if rest else []
        mn = self.mnem
        base = mn[:-1] if mn in ("callq", "jmpq", "retq") else mn
        if base in ("call", "jmp") or (mn.startswith("j") or mn.startswith("loop")):
            if base == "call":
                self.kind = "call"
            elif base == "jmp":
                self.kind = "jmp"
            else:
                self.kind = "jcc"
            op = self.ops[0] if self.ops else ""
            if op.startswith("*"):
                mm = mem(op[1:])
                if mm is not None and mm[1] == "rip" and mm[2] is None:
                    self.slot = addr + length + mm[0]
                else:
                    self.indirect = True
            else:
                h = _HEX_RE.match(op)
                if h:
                    self.target = int(h.group(1), 16)
                else:
                    self.indirect = True
        elif base in ("ret", "hlt", "ud2", "iret", "iretq", "sysret") or mn in ("retf", "lret"):
            self.kind = "ret"
        else:
            self.kind = None

    def rip_target(self, op):
        """Absolute address of a ``disp(%rip)`` operand OP, or None."""
        mm = mem(op)
        if mm is not None and mm[1] == "rip" and mm[2] is None:
            return (self.addr + self.length + mm[0]) & ((1 << 64) - 1)
        return None

    def writes(self):
        """Registers (canonical) this instruction may write, callee-saved and
        %rsp included; calls clobber the caller-saved ones."""
        mn = self.mnem
        out = set()
        if self.kind == "call":
            out.update(CALLER_SAVED)
            return out
        if self.kind is not None:
            return out
        ops = self.ops
        if mn not in _NO_DEST and ops:
            r = reg(ops[-1])
            if r:
                out.add(r)
        if mn.startswith(("xchg", "xadd", "cmpxchg")):
            for op in ops:
                r = reg(op)
                if r:
                    out.add(r)
        if mn.startswith(("push", "pop", "enter", "leave")):
            out.add("rsp")
        if mn.startswith(("leave", "enter")):
            out.add("rbp")
        if mn == "cpuid":
            out.update(("rax", "rbx", "rcx", "rdx"))
        if mn.startswith(("mul", "imul", "div", "idiv", "cqto", "cltq", "cltd", "cwtl", "cqo",
                          "rdtsc", "cmpxchg", "syscall", "lods", "xlat", "in")):
            out.update(("rax", "rdx", "rcx", "r11"))
        if mn.startswith(("stos", "movs", "scas", "cmps", "lods", "ins", "outs")) and \
                not mn.startswith(("movsx", "movslq", "movsbl", "movsbq", "movswl", "movswq",
                                   "movsbw", "movss", "movsd", "movsl", "movsq")):
            out.update(("rdi", "rsi", "rcx"))
        if mn in ("movsl", "movsq", "movsb", "movsw"):   # string moves when without operands
            if not ops:
                out.update(("rdi", "rsi", "rcx"))
        return out


def stack_store(ins):
    """(base, disp) of a store by INS into a %rsp- or %rbp-based slot ("?" for
    the base when indexed); None otherwise.  Stores through other registers
    cannot reach a slot of a function that lets no stack address out (the
    only functions whose slots are used)."""
    if ins.kind is not None or ins.mnem in _NO_DEST or not ins.ops:
        return None
    mm = mem(ins.ops[-1])
    if mm is None:
        return None
    if mm[1] in ("rsp", "rbp"):
        return (mm[1], mm[0]) if mm[2] is None else ("?", 0)
    if mm[2] in ("rsp", "rbp"):
        return ("?", 0)
    return None


def escapes_stack(ins):
    """INS lets the address of a stack slot out (``lea 0x10(%rsp),%rdi``)."""
    ops = ins.ops
    if ins.mnem in ("lea", "leaq") and len(ops) == 2:
        mm = mem(ops[0])
        return mm is not None and (mm[1] in ("rsp", "rbp") or mm[2] in ("rsp", "rbp")) and \
            reg(ops[1]) not in ("rsp", "rbp")
    if ins.mnem in ("mov", "movq") and len(ops) == 2 and ops[0] in ("%rsp", "%rbp"):
        return reg(ops[1]) not in ("rsp", "rbp")
    return ins.mnem.startswith("push") and ops == ["%rsp"]


def decode(raw):
    """[Insn] from gdb.Architecture.disassemble's dicts; raises DecodeError."""
    out = []
    for d in raw:
        out.append(Insn(int(d["addr"]), int(d["length"]), str(d["asm"])))
        if len(out) > MAX_INSNS:
            raise DecodeError("function too long")
    return out
