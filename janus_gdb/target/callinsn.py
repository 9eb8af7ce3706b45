"""Call instructions, decoded from the bytes that end at a return address
(x86_64 ``call rel32`` and ``call *r/m64``, aarch64 ``bl`` and ``blr``):
whether a word found on a stack can be a return address.  Pure."""

import struct

ADDR_MAX = (1 << 64) - 1


def call_target(arch, pc, code):
    """Whether the bytes CODE, which end at PC, end with a call instruction
    of ARCH: (True, target address or None for an indirect call), or
    (False, None).  CODE holds the 8 bytes before PC."""
    if code is None or len(code) < 8:
        return False, None
    if arch == "aarch64":
        word = struct.unpack("<I", code[4:8])[0]
        if word & 0xFC000000 == 0x94000000:          # bl imm26
            imm = word & 0x03FFFFFF
            if imm & 0x02000000:
                imm -= 0x04000000
            return True, (pc - 4 + imm * 4) & ADDR_MAX
        if word & 0xFFFFFC1F == 0xD63F0000:          # blr xN
            return True, None
        return False, None
    if code[3] == 0xE8:                              # call rel32
        rel = struct.unpack("<i", code[4:8])[0]
        return True, (pc + rel) & ADDR_MAX
    for length in range(2, 8):                       # call *r/m64: FF /2
        at = 8 - length
        if code[at] == 0xFF and (code[at + 1] >> 3) & 7 == 2 and \
                _ff_length(code[at + 1], code[at + 2] if at + 2 < 8 else None) == length:
            return True, None
    return False, None


def _ff_length(modrm, sib):
    """Length of an ``FF /2`` instruction (opcode, ModRM, SIB, displacement)
    from its ModRM byte and the byte after it (None: not there)."""
    mod, rm = modrm >> 6, modrm & 7
    if mod == 3:
        return 2
    n = 2
    if rm == 4:                     # a SIB byte follows
        if sib is None:
            return None
        n += 1
        if mod == 0 and sib & 7 == 5:
            n += 4                  # no base: disp32
    elif mod == 0 and rm == 5:
        return 6                    # disp32(%rip)
    return n + {0: 0, 1: 1, 2: 4}[mod]
