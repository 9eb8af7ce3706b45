"""A live process read from /proc, without gdb: what ``coregroups`` needs
of a core, for the fast path on a process gdb has attached to.

- Threads from ``/proc/PID/task``.  Each one's system call, its first
  three arguments, its stack pointer and its pc come from
  ``/proc/PID/task/TID/syscall``.  The kernel fills that file from the
  registers of a stopped thread, and a traced process is stopped.  Other
  registers are not known, so a walk that needs one before a frame has
  saved it stops short, and gdb reads that thread.
- Memory from ``/proc/PID/mem``, with pread.  gdb is the tracer, and this
  runs in gdb's process, so the kernel allows it.  Nothing is written.
- Mapped files from ``/proc/PID/maps``.

Stdlib only.  Errors give LiveError, with a one-line message.
"""

import bisect
import os
import struct

from . import coremem

MAX_THREADS = 1 << 20
MAX_MAPS = 1 << 22
MAX_READ = 64 << 20
ADDR_MASK = (1 << 64) - 1
# /proc/PID/task/TID/syscall: "NR ARG1 .. ARG6 SP PC"; the registers they are
SYSCALL_REGS = {coremem.EM_X86_64: ("orig_rax", ("rdi", "rsi", "rdx"), "rsp", "rip"),
                coremem.EM_AARCH64: ("x8", ("x0", "x1", "x2"), "sp", "pc")}


class LiveError(Exception):
    """The process cannot be read from /proc."""


class LiveMemory(coremem.MappedFiles):
    """Process PID, with NUMS {LWP: gdb's thread number}: threads not in
    NUMS are left out (gdb does not know them).  Use close() when done."""

    def __init__(self, pid, nums):
        self.pid = pid
        self.machine = _machine(pid)
        self.threads = []           # coremem.Thread, index = gdb's number - 1
        self.mappings = []          # coremem.Mapping of the mapped files, sorted
        self.names = {}             # {lwp: comm}
        self.warnings = []
        self._maps = []             # [(start, end)] of every mapping, sorted
        self._starts = []
        self._map_starts = []
        spec = SYSCALL_REGS.get(self.machine)
        if spec is None:
            raise LiveError("process %d: only x86_64 and aarch64 are read directly" % pid)
        try:
            self._fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
        except OSError as exc:
            raise LiveError("cannot read /proc/%d/mem: %s" % (pid, exc.strerror or exc))
        try:
            self._read_maps()
            self._read_threads(nums, spec)
        except (OSError, ValueError) as exc:
            self.close()
            raise LiveError("cannot read process %d from /proc: %s" % (
                pid, getattr(exc, "strerror", None) or exc))

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read_maps(self):
        with open("/proc/%d/maps" % self.pid) as f:
            for n, line in enumerate(f):
                if n >= MAX_MAPS:
                    break
                parts = line.split(None, 5)
                if len(parts) < 5:
                    continue
                start, end = (int(x, 16) for x in parts[0].split("-"))
                if "r" not in parts[1]:
                    continue
                self._maps.append((start, end))
                path = parts[5].rstrip("\n") if len(parts) > 5 else ""
                if path.startswith("/"):
                    self.mappings.append(coremem.Mapping(start, end, int(parts[2], 16), path))
        self._maps.sort()
        self._starts = [m[0] for m in self._maps]
        self.set_mappings(self.mappings)

    def _read_threads(self, nums, spec):
        nr_name, arg_names, sp_name, pc_name = spec
        names = (nr_name,) + arg_names + (sp_name, pc_name)
        for tid in sorted(os.listdir("/proc/%d/task" % self.pid))[:MAX_THREADS]:
            try:
                lwp = int(tid)
            except ValueError:
                continue
            if lwp not in nums:
                continue
            try:
                with open("/proc/%d/task/%d/syscall" % (self.pid, lwp)) as f:
                    fields = f.read(512).split()
                # the name is the target's own bytes: kept (surrogateescape)
                with open("/proc/%d/task/%d/comm" % (self.pid, lwp), encoding="utf-8",
                          errors="surrogateescape") as f:
                    self.names[lwp] = f.read(64).rstrip("\n")
            except OSError:
                continue    # the thread exited
            if len(fields) == 9:        # in a system call
                values = [int(fields[0]) & ADDR_MASK] + [int(x, 16) for x in fields[1:4]] + \
                    [int(fields[7], 16), int(fields[8], 16)]
                raw = struct.pack("<6Q", *values)
                self.threads.append(coremem.Thread(lwp, names, raw, nums[lwp] - 1))
            else:                       # "running", or "-1 SP PC": not grouped
                self.threads.append(coremem.Thread(lwp, (), b"", nums[lwp] - 1))
        self.threads.sort(key=lambda t: t.index)

    # --- the queries of coremem.CoreMemory --------------------------------------

    def segment_at(self, addr):
        """(start, size, 0, size, False) of the mapping holding ADDR, or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0 or addr >= self._maps[i][1]:
            return None
        start, end = self._maps[i]
        return (start, end - start, 0, end - start, False)

    def read(self, addr, size):
        if size <= 0 or size > MAX_READ or addr < 0 or addr + size > ADDR_MASK \
                or self._fd is None:
            return None
        try:
            data = os.pread(self._fd, size, addr)
        except (OSError, OverflowError):
            return None
        return data if len(data) == size else None

    read_stored = read

    def read_u64(self, addr):
        raw = self.read(addr, 8)
        return struct.unpack("<Q", raw)[0] if raw is not None else None



def _machine(pid):
    """The ELF e_machine of process PID's executable."""
    try:
        with open("/proc/%d/exe" % pid, "rb") as f:
            head = f.read(20)
    except OSError as exc:
        raise LiveError("cannot read /proc/%d/exe: %s" % (pid, exc.strerror or exc))
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[5] != 1:
        raise LiveError("process %d: its executable is not a little-endian ELF file" % pid)
    return struct.unpack_from("<H", head, 18)[0]
