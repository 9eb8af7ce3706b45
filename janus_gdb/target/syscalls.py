"""What a thread stopped inside a system call is doing, from its registers.

A thread blocked in the kernel keeps the system call number and arguments
in its registers (x86_64: ``$orig_rax`` and ``$rdi``/``$rsi``/``$rdx``), in a
live process as in a core file.  This needs no debug symbols at all.

aarch64 (asm-generic numbers) keeps the number in ``x8`` and the arguments
in ``x0``-``x2``, but exposes no ``orig_x0``: ``x8`` is trusted only when the
pc is at or just after an ``svc #0`` (``aarch64_in_syscall``), and ``x0`` is
the return value once the call has returned (-4, EINTR, after a signal).
"""

# Per architecture: register holding the syscall number while inside the
# kernel, and the first three argument registers.
ARCH_REGISTERS = {
    "i386:x86-64": ("orig_rax", ("rdi", "rsi", "rdx")),
    "aarch64": ("x8", ("x0", "x1", "x2")),
}

# Architectures whose system-call number register is only meaningful at an
# svc instruction (no orig_ register): their pc is checked first.
SVC_ARCHES = ("aarch64",)
AARCH64_SVC0 = 0xd4000001      # svc #0, little-endian in memory
EINTR = 4

# x86_64 syscall numbers -> (name, thread state)
X86_64_SYSCALLS = {
    0: ("read", "io"), 1: ("write", "io"), 7: ("poll", "poll"), 17: ("pread64", "io"),
    18: ("pwrite64", "io"), 19: ("readv", "io"), 20: ("writev", "io"),
    23: ("select", "poll"), 34: ("pause", "signal-wait"), 35: ("nanosleep", "sleep"),
    42: ("connect", "io"), 43: ("accept", "io"), 44: ("sendto", "io"),
    45: ("recvfrom", "io"), 46: ("sendmsg", "io"), 47: ("recvmsg", "io"),
    61: ("wait4", "child-wait"), 72: ("fcntl", "io"), 74: ("fsync", "io"),
    128: ("rt_sigtimedwait", "signal-wait"), 130: ("rt_sigsuspend", "signal-wait"),
    202: ("futex", "futex"), 219: ("restart_syscall", "restart"), 230: ("clock_nanosleep", "sleep"),
    232: ("epoll_wait", "poll"), 247: ("waitid", "child-wait"),
    270: ("pselect6", "poll"), 271: ("ppoll", "poll"), 281: ("epoll_pwait", "poll"),
    288: ("accept4", "io"), 299: ("recvmmsg", "io"), 307: ("sendmmsg", "io"),
    426: ("io_uring_enter", "io"), 441: ("epoll_pwait2", "poll"),
    449: ("futex_waitv", "futex"),
}

# aarch64 (include/uapi/asm-generic/unistd.h): no poll, select, pause or
# epoll_wait, only ppoll, pselect6, rt_sigsuspend and epoll_pwait.
AARCH64_SYSCALLS = {
    22: ("epoll_pwait", "poll"), 25: ("fcntl", "io"), 63: ("read", "io"), 64: ("write", "io"),
    65: ("readv", "io"), 66: ("writev", "io"), 67: ("pread64", "io"), 68: ("pwrite64", "io"),
    72: ("pselect6", "poll"), 73: ("ppoll", "poll"), 82: ("fsync", "io"),
    95: ("waitid", "child-wait"), 98: ("futex", "futex"), 101: ("nanosleep", "sleep"),
    115: ("clock_nanosleep", "sleep"), 128: ("restart_syscall", "restart"),
    133: ("rt_sigsuspend", "signal-wait"), 137: ("rt_sigtimedwait", "signal-wait"),
    202: ("accept", "io"), 203: ("connect", "io"), 206: ("sendto", "io"),
    207: ("recvfrom", "io"), 211: ("sendmsg", "io"), 212: ("recvmsg", "io"),
    242: ("accept4", "io"), 243: ("recvmmsg", "io"), 260: ("wait4", "child-wait"),
    269: ("sendmmsg", "io"), 426: ("io_uring_enter", "io"), 441: ("epoll_pwait2", "poll"),
    449: ("futex_waitv", "futex"),
}

SYSCALL_TABLES = {"i386:x86-64": X86_64_SYSCALLS, "aarch64": AARCH64_SYSCALLS}

FUTEX_NR = {"i386:x86-64": 202, "aarch64": 98}

# futex(2) commands (low 7 bits of the op; 128 = FUTEX_PRIVATE_FLAG,
# 256 = FUTEX_CLOCK_REALTIME)
FUTEX_CMD_MASK = 0x7F
FUTEX_PRIVATE_FLAG = 128
FUTEX_WAIT = 0
FUTEX_LOCK_PI = 6
FUTEX_WAIT_BITSET = 9
FUTEX_WAIT_REQUEUE_PI = 11
FUTEX_LOCK_PI2 = 13
FUTEX_WAIT_CMDS = (FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI)
FUTEX_PI_CMDS = (FUTEX_LOCK_PI, FUTEX_LOCK_PI2)
FUTEX_CMD_NAMES = {0: "FUTEX_WAIT", 1: "FUTEX_WAKE", 6: "FUTEX_LOCK_PI", 9: "FUTEX_WAIT_BITSET",
                   11: "FUTEX_WAIT_REQUEUE_PI", 13: "FUTEX_LOCK_PI2"}

STATE_PHRASES = {
    "io": "in I/O",
    "poll": "polling for events",
    "sleep": "sleeping",
    "signal-wait": "waiting for a signal",
    "child-wait": "waiting for a child process",
}


def to_signed64(value):
    """Interpret an unsigned 64-bit register value as signed."""
    if value is None:
        return None
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def describe_syscall(arch, nr):
    """Return (name, state) for syscall NR, or ('syscall N', 'syscall')."""
    table = SYSCALL_TABLES.get(arch, {})
    if nr in table:
        return table[nr]
    return ("syscall %d" % nr, "syscall")


def decode_futex(op):
    """Split a futex op into (command, private, command name)."""
    cmd = op & FUTEX_CMD_MASK
    return cmd, bool(op & FUTEX_PRIVATE_FLAG), FUTEX_CMD_NAMES.get(cmd, "futex op %d" % cmd)


def aarch64_in_syscall(insn_at_pc, insn_before_pc):
    """Whether an aarch64 thread is in (or restarting) a system call: its pc
    is at an ``svc #0`` (a call interrupted for a signal or a ptrace stop is
    rewound to it) or just after one (a thread blocked in the kernel, as
    qemu-user and gdbstubs show it).  The arguments are the 4-byte words at
    pc and pc-4 as unsigned little-endian integers, or None when unreadable."""
    return AARCH64_SVC0 in (insn_at_pc, insn_before_pc)


def plausible_futex_address(value):
    """A futex word's address is 4-aligned and not small or a -errno value
    (what x0 holds after the call returned)."""
    return value is not None and 4096 <= value < (1 << 63) and value % 4 == 0


def decode_svc_registers(arch, pc, insn_at, insn_before, read):
    """The system-call registers of a thread of ARCH (one of SVC_ARCHES),
    with no orig_x0 register: ``x8`` counts only when the pc is at or just
    after an ``svc #0`` (INSN_AT, INSN_BEFORE: the words at pc and pc-4, or
    None); elsewhere the thread runs user code (sysno -1, as x86_64's
    orig_rax).  x0 = -4 (EINTR) means the call returned, interrupted by a
    signal: its first argument is gone (``eintr``).  READ(register name)
    gives a register as an unsigned integer or None.

    Returns {'sysno', 'args' (futex and restart calls), 'svc' ('at' or
    'after'), 'eintr', 'why' (when unreadable)}."""
    nr_reg, arg_regs = ARCH_REGISTERS[arch]
    if insn_at is None and insn_before is None:
        return {"sysno": None, "why": "the code at the pc (0x%x) cannot be read" % (pc or 0)}
    if not aarch64_in_syscall(insn_at, insn_before):
        return {"sysno": (1 << 64) - 1}      # -1: not in a system call
    regs = {"svc": "at" if insn_at == AARCH64_SVC0 else "after"}
    sysno = regs["sysno"] = read(nr_reg)
    args = tuple(read(r) for r in arg_regs)
    if to_signed64(args[0]) == -EINTR:
        regs["eintr"] = True
    elif sysno is not None and describe_syscall(arch, sysno)[1] in ("futex", "restart"):
        regs["args"] = args
    return regs
