"""What a thread stopped inside a system call is doing, from its registers.

A thread blocked in the kernel keeps the system call number and arguments
in its registers (x86_64: ``$orig_rax`` and ``$rdi``/``$rsi``/``$rdx``), in a
live process as in a core file.  This needs no debug symbols at all.
"""

# Per architecture: register holding the syscall number while inside the
# kernel, and the first three argument registers.
ARCH_REGISTERS = {
    "i386:x86-64": ("orig_rax", ("rdi", "rsi", "rdx")),
}

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

SYSCALL_TABLES = {"i386:x86-64": X86_64_SYSCALLS}

FUTEX_NR = {"i386:x86-64": 202}

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
