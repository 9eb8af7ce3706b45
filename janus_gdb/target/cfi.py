"""DWARF call frame information of ``.eh_frame``: the CIEs and FDEs of one
ELF file, and the interpreter of their CFA instructions that gives, for one
pc, how to find the caller's registers (the "row" of the CFI table).
Stdlib only, no gdb; every loop bounded; garbage gives None.

What gcc and glibc emit on x86_64 is executed: def_cfa*, offset*,
restore*, advance_loc*, set_loc, remember/restore_state, register,
same_value, undefined, val_offset*, GNU_args_size.  DWARF expressions
(def_cfa_expression, expression, val_expression: glibc's signal
trampoline, PLT stubs) are recorded as such; the unwinder stops there.
"""

import bisect
import struct

from .elffile import ElfError, _encoded, _sleb, _uleb

MAX_STATE_STACK = 64
MAX_INSNS = 100000

# rule kinds
UNDEFINED, SAME, OFFSET, VAL_OFFSET, REGISTER, EXPR, VAL_EXPR = range(7)


class Cie(object):
    __slots__ = ("code_align", "data_align", "ra_reg", "fde_enc", "has_z", "signal",
                 "insns")

    def __init__(self):
        self.code_align = 1
        self.data_align = 1
        self.ra_reg = 16
        self.fde_enc = 0
        self.has_z = False
        self.signal = False     # "S": a signal frame (its pc is not a return address)
        self.insns = b""


class Row(object):
    """The CFI row at one pc.  cfa: (register, offset) or None when the CFA
    is a DWARF expression (unsupported); regs: {register: (kind, value)}."""
    __slots__ = ("cfa", "regs", "ra_reg", "signal")

    def __init__(self, cfa, regs, ra_reg, signal):
        self.cfa = cfa
        self.regs = regs
        self.ra_reg = ra_reg
        self.signal = signal


class CfiError(Exception):
    pass


def entry_at(data, pos):
    """(where its body starts, where it ends) of the .eh_frame entry (CIE
    or FDE) whose length field is at POS of DATA; None for the zero length
    that ends the section.  struct.error when POS is past the data."""
    length, = struct.unpack_from("<I", data, pos)
    if length == 0:
        return None
    if length == 0xffffffff:
        length, = struct.unpack_from("<Q", data, pos + 4)
        return pos + 12, pos + 12 + length
    return pos + 4, pos + 4 + length


def parse_cie(data, pos):
    """The Cie whose length field is at POS of DATA (.eh_frame bytes)."""
    got = entry_at(data, pos)
    if got is None or got[1] - got[0] < 4 or got[1] > len(data):
        raise CfiError("CIE out of bounds")
    start, end = got
    cie_id, = struct.unpack_from("<I", data, start)
    if cie_id != 0:
        raise CfiError("not a CIE")
    c = Cie()
    p = start + 4
    version = data[p]
    p += 1
    aug_end = data.index(b"\0", p, end)
    aug = data[p:aug_end].decode("latin-1")
    p = aug_end + 1
    if "eh" in aug:
        p += 8
    c.code_align, p = _uleb(data, p)
    c.data_align, p = _sleb(data, p)
    if version == 1:
        c.ra_reg = data[p]
        p += 1
    else:
        c.ra_reg, p = _uleb(data, p)
    if aug.startswith("z"):
        c.has_z = True
        alen, p = _uleb(data, p)
        after = p + alen
        for ch in aug[1:]:
            if ch == "R":
                c.fde_enc = data[p]
                p += 1
            elif ch == "P":
                enc = data[p]
                _, p = _encoded(data, p + 1, enc & 0x7f, 0)
            elif ch == "L":
                p += 1
            elif ch == "S":
                c.signal = True
            elif ch == "B":
                continue
            else:
                break
        p = after
    if p > end:
        raise CfiError("CIE augmentation out of bounds")
    c.insns = data[p:end]
    return c


def parse_fde(data, pos, base, cies):
    """(cie, start, end, insns) of the FDE at POS of DATA (.eh_frame bytes
    at file address BASE); CIES caches Cie by offset.  None for a CIE or
    garbage."""
    try:
        got = entry_at(data, pos)
        if got is None or got[1] - got[0] < 8 or got[1] > len(data):
            return None
        start, end = got
        cie_id, = struct.unpack_from("<I", data, start)
        if cie_id == 0:
            return None
        cie_at = start - cie_id
        cie = cies.get(cie_at)
        if cie is None:
            cie = cies[cie_at] = parse_cie(data, cie_at)
        p = start + 4
        begin, p = _encoded(data, p, cie.fde_enc & 0x7f, base + p)
        size, p = _encoded(data, p, cie.fde_enc & 0x0f, 0)
        if cie.has_z:
            alen, p = _uleb(data, p)
            p += alen
        if p > end or begin is None or size is None:
            return None
        return cie, begin, begin + size, data[p:end]
    except (CfiError, ElfError, struct.error, IndexError, ValueError):
        return None


def _block(insns, p):
    n, p = _uleb(insns, p)
    if p + n > len(insns):
        raise CfiError("expression out of bounds")
    return insns[p:p + n], p + n


def execute(cie, fde_start, insns, pc):
    """The Row at PC: the CIE's initial instructions, then the FDE's INSNS
    (starting at FDE_START) up to PC.  CfiError on garbage."""
    cfa = None
    regs = {}
    init_state = None
    stack = []
    for program, limit in ((cie.insns, None), (insns, pc)):
        loc = fde_start
        p = 0
        n = len(program)
        count = 0
        while p < n:
            count += 1
            if count > MAX_INSNS:
                raise CfiError("too many CFA instructions")
            op = program[p]
            p += 1
            hi = op & 0xc0
            low = op & 0x3f
            if hi == 0x40:                      # advance_loc
                loc += low * cie.code_align
                if limit is not None and loc > limit:
                    break
                continue
            if hi == 0x80:                      # offset
                off, p = _uleb(program, p)
                regs[low] = (OFFSET, off * cie.data_align)
                continue
            if hi == 0xc0:                      # restore
                _restore(regs, init_state, low)
                continue
            if op == 0x00:                      # nop
                continue
            if op in (0x02, 0x03, 0x04):        # advance_loc1/2/4
                size = {0x02: 1, 0x03: 2, 0x04: 4}[op]
                if p + size > n:
                    raise CfiError("truncated advance")
                delta = int.from_bytes(program[p:p + size], "little")
                p += size
                loc += delta * cie.code_align
                if limit is not None and loc > limit:
                    break
            elif op == 0x01:                    # set_loc
                if cie.fde_enc & 0x70 not in (0, 0x10):
                    raise CfiError("set_loc encoding")
                newloc, p = _encoded(program, p, cie.fde_enc & 0x0f, 0)
                loc = newloc
                if limit is not None and loc > limit:
                    break
            elif op == 0x05:                    # offset_extended
                reg, p = _uleb(program, p)
                off, p = _uleb(program, p)
                regs[reg] = (OFFSET, off * cie.data_align)
            elif op == 0x06:                    # restore_extended
                reg, p = _uleb(program, p)
                _restore(regs, init_state, reg)
            elif op == 0x07:                    # undefined
                reg, p = _uleb(program, p)
                regs[reg] = (UNDEFINED, 0)
            elif op == 0x08:                    # same_value
                reg, p = _uleb(program, p)
                regs[reg] = (SAME, 0)
            elif op == 0x09:                    # register
                reg, p = _uleb(program, p)
                reg2, p = _uleb(program, p)
                regs[reg] = (REGISTER, reg2)
            elif op == 0x0a:                    # remember_state
                if len(stack) >= MAX_STATE_STACK:
                    raise CfiError("remember_state too deep")
                stack.append((cfa, dict(regs)))
            elif op == 0x0b:                    # restore_state
                if not stack:
                    raise CfiError("restore_state without remember_state")
                cfa, regs = stack.pop()
            elif op == 0x0c:                    # def_cfa
                reg, p = _uleb(program, p)
                off, p = _uleb(program, p)
                cfa = (reg, off)
            elif op == 0x0d:                    # def_cfa_register
                reg, p = _uleb(program, p)
                cfa = (reg, cfa[1] if cfa else 0)
            elif op == 0x0e:                    # def_cfa_offset
                off, p = _uleb(program, p)
                cfa = (cfa[0] if cfa else 7, off)
            elif op == 0x0f:                    # def_cfa_expression
                _, p = _block(program, p)
                cfa = None
            elif op in (0x10, 0x16):            # expression, val_expression
                reg, p = _uleb(program, p)
                expr, p = _block(program, p)
                regs[reg] = (EXPR if op == 0x10 else VAL_EXPR, expr)
            elif op == 0x11:                    # offset_extended_sf
                reg, p = _uleb(program, p)
                off, p = _sleb(program, p)
                regs[reg] = (OFFSET, off * cie.data_align)
            elif op == 0x12:                    # def_cfa_sf
                reg, p = _uleb(program, p)
                off, p = _sleb(program, p)
                cfa = (reg, off * cie.data_align)
            elif op == 0x13:                    # def_cfa_offset_sf
                off, p = _sleb(program, p)
                cfa = (cfa[0] if cfa else 7, off * cie.data_align)
            elif op in (0x14, 0x15):            # val_offset, val_offset_sf
                reg, p = _uleb(program, p)
                if op == 0x14:
                    off, p = _uleb(program, p)
                else:
                    off, p = _sleb(program, p)
                regs[reg] = (VAL_OFFSET, off * cie.data_align)
            elif op == 0x2d:                    # AARCH64_negate_ra_state (GNU_window_save)
                pass                            # signed return addresses: the unwinder strips them
            elif op == 0x2e:                    # GNU_args_size
                _, p = _uleb(program, p)
            elif op == 0x2f:                    # GNU_negative_offset_extended
                reg, p = _uleb(program, p)
                off, p = _uleb(program, p)
                regs[reg] = (OFFSET, -off * cie.data_align)
            else:
                raise CfiError("CFA instruction 0x%02x" % op)
        if init_state is None:
            init_state = dict(regs)
    return Row(cfa, regs, cie.ra_reg, cie.signal)


def _restore(regs, init_state, reg):
    if init_state is not None and reg in init_state:
        regs[reg] = init_state[reg]
    else:
        regs.pop(reg, None)


class EhFrame(object):
    """The .eh_frame of one file: DATA loaded at file address BASE, indexed
    by .eh_frame_hdr's table (HDR bytes at HDR_BASE) when it has a usable
    one, else by one scan of all FDEs."""

    def __init__(self, data, base, hdr=None, hdr_base=None):
        self.data = data
        self.base = base
        self.cies = {}
        self._starts = []
        self._offsets = []
        self._rows = {}
        if not (hdr and self._index_hdr(hdr, hdr_base)):
            self._index_scan()

    def _index_hdr(self, hdr, hdr_base):
        try:
            version, _ptr_enc, count_enc, table_enc = struct.unpack_from("<BBBB", hdr, 0)
            if version != 1 or table_enc != 0x3b:   # datarel sdata4
                return False
            p = 4
            _, p = _encoded(hdr, p, _ptr_enc & 0x7f, hdr_base + p)
            count, p = _encoded(hdr, p, count_enc & 0x0f, 0)
            if count is None or p + 8 * count > len(hdr):
                return False
            vals = struct.unpack_from("<%di" % (2 * count), hdr, p)
        except (ElfError, struct.error, IndexError):
            return False
        self._starts = [hdr_base + v for v in vals[0::2]]
        self._offsets = [hdr_base + v - self.base for v in vals[1::2]]
        return True

    def _index_scan(self):
        data = self.data
        pos = 0
        found = []
        while pos + 8 <= len(data) and len(found) < 1000000:
            got = entry_at(data, pos)
            if got is None:
                break
            fde = parse_fde(data, pos, self.base, self.cies)
            if fde is not None:
                found.append((fde[1], pos))
            pos = got[1]
        found.sort()
        self._starts = [s for s, _ in found]
        self._offsets = [o for _, o in found]

    def row_at(self, pc):
        """The Row at file address PC, or None (no FDE, or unusable CFI).
        Cached by pc: many threads stop at the same places."""
        if pc in self._rows:
            return self._rows[pc]
        row = None
        i = bisect.bisect_right(self._starts, pc) - 1
        if i >= 0:
            fde = parse_fde(self.data, self._offsets[i], self.base, self.cies)
            if fde is not None and fde[1] <= pc < fde[2]:
                try:
                    row = execute(fde[0], fde[1], fde[3], pc)
                except (CfiError, ElfError, struct.error, IndexError, ValueError):
                    row = None
        if len(self._rows) > 100000:
            self._rows.clear()
        self._rows[pc] = row
        return row
