"""Return addresses found among a thread's stack words, where gdb cannot
unwind (musl's wait functions have no unwind tables on x86_64).

A word on the stack above the stack pointer is taken for a return address
only when it points just after a call instruction (read from the target's
code: x86_64 ``call rel32`` or ``call *...``, aarch64 ``bl``/``blr``) in a
function with a symbol.  That is evidence of a call that may still be
active, not proof: a stale word left by an earlier call looks the same.
The callers above a wait are reported as such ("found on the stack"), never
as frames.  Read-only: memory reads and symbol look-ups only.
"""

import re
import struct

import gdb  # pylint: disable=import-error

from ..model import StackCall
from .callinsn import call_target

# Bytes of stack read above the stack pointer, and calls kept per thread.
SCAN_BYTES = 2048
MAX_CALLS = 12
ADDR_MAX = (1 << 64) - 1
# user-space code lives below this on x86_64 and aarch64 (48-bit VAs)
USER_TOP = 1 << 48

_INFO_SYMBOL_RE = re.compile(r"^(\S+?)(?: \+ (\d+))? in section \S+(?: of (\S+))?")


def _read(addr, size):
    if addr is None or addr < 0x1000 or addr + size > ADDR_MAX:
        return None
    try:
        data = bytes(gdb.selected_inferior().read_memory(addr, size))
    except (gdb.MemoryError, gdb.error, ValueError, OverflowError):
        return None
    return data if len(data) == size else None


def _read_up_to(addr, size):
    """Up to SIZE bytes from ADDR, page by page until one cannot be read
    (a thread's stack may end a few bytes above its stack pointer)."""
    out = b""
    while len(out) < size:
        at = addr + len(out)
        n = min(size - len(out), PAGE - at % PAGE)
        got = _read(at, n)
        if got is None:
            break
        out += got
    return out


PAGE = 4096


def symbol_at(addr):
    """(name, offset, library path or None) of the symbol covering ADDR
    (minimal symbols too), or None."""
    try:
        text = gdb.execute("info symbol 0x%x" % addr, to_string=True)
    except gdb.error:
        return None
    m = _INFO_SYMBOL_RE.match(text.strip())
    if not m:
        return None
    return m.group(1), int(m.group(2) or 0), m.group(3)


def scan(frame, arch, sp):
    """[StackCall] of the return addresses among the words from SP up
    (SCAN_BYTES), innermost first, at most MAX_CALLS; [] when SP or the
    stack cannot be read."""
    data = _read_up_to(sp, SCAN_BYTES) if sp else b""
    if not data:
        return []
    out = []
    seen = set()
    for off in range(0, len(data) - 7, 8):
        word = struct.unpack_from("<Q", data, off)[0]
        if not 0x1000 < word < USER_TOP or word in seen:
            continue
        is_call, target = call_target(arch, word, _read(word - 8, 8))
        if not is_call:
            continue
        sym = symbol_at(word - 1)
        if sym is None:
            continue
        seen.add(word)
        callee = None
        if target is not None:
            got = symbol_at(target)
            if got is not None and got[1] == 0:
                callee = got[0]
        file = line = None
        try:
            sal = gdb.find_pc_line(word - 1)
            if sal is not None and sal.symtab is not None and sal.line:
                file = sal.symtab.filename.rsplit("/", 1)[-1]
                line = sal.line
        except gdb.error:
            pass
        lib = None
        try:
            path = gdb.solib_name(word)
            if path:
                lib = path.rsplit("/", 1)[-1]
        except gdb.error:
            pass
        out.append(StackCall(sp + off, word, sym[0], callee, file, line, lib))
        if len(out) >= MAX_CALLS:
            break
    return out
