"""Run inside gdb (-x) by tests/test_fastcore.py: prints, for every thread
of the loaded core, what gdb says: its LWP, gdb's thread number, its pc/sp/rbp registers, its
real frames (not inlined calls, not tail calls) as pc and function name, and the two stack
words at sp (x/2gx $sp).  One JSON line per thread, prefixed FASTCORE."""

import json
import re

import gdb


def frames():
    out = []
    f = gdb.newest_frame()
    n = 0
    while f is not None and n < 300:
        n += 1
        # inlined calls and tail calls are gdb's reading of the debug info
        # (DW_TAG_inlined_subroutine, DW_TAG_call_site), not frames on the stack
        if f.type() not in (gdb.INLINE_FRAME, gdb.TAILCALL_FRAME):
            out.append([int(f.pc()), f.name()])
        try:
            f = f.older()
        except gdb.error:
            break
    return out


def main():
    inf = gdb.selected_inferior()
    for t in sorted(inf.threads(), key=lambda t: t.ptid[1]):
        t.switch()
        regs = {}
        try:
            text = gdb.execute("info registers rip rsp rbp", to_string=True)
        except gdb.error:
            text = ""       # not x86_64: the frames only
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("rip", "rsp", "rbp"):
                regs[parts[0]] = int(parts[1], 16)
        words = []
        try:
            text = gdb.execute("x/2gx $sp", to_string=True)
            words = [int(w, 16) for w in re.findall(r"\t(0x[0-9a-f]+)", text)]
        except gdb.MemoryError:
            words = None
        print("FASTCORE " + json.dumps({"lwp": t.ptid[1], "num": t.num, "regs": regs, "frames": frames(),
                                        "words": words}))


main()
