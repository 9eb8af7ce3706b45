"""Unit tests of janus_gdb.target.logname (log calls and the naming rule) on
made-up instruction lists in gdb's AT&T disassembly format.  The real-gdb
tests are in test_lognames.py and test_janus_real.py."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.target import logname, machinecode  # noqa: E402
from janus_gdb.model import FrameInfo  # noqa: E402

BASE = 0x1000
LEN = 5
FMT, FILE_, FUNC, OTHER_FUNC, KEY, LOCKFMT = 0x2000, 0x2010, 0x2030, 0x2050, 0x2070, 0x2090
STRINGS = {FMT: "[%s:%s:%d] ", FILE_: "plugins/janus_demo.c", FUNC: "janus_demo_handler",
           OTHER_FUNC: "janus_demo_helper", KEY: "room id", LOCKFMT: "[%s:%s:%d:lock] %p\n"}


class FakeImage(object):
    def __init__(self, refs=None):
        self._refs = refs or {}

    def string(self, addr, limit=logname.MAX_STRING):
        s = STRINGS.get(addr)
        return s if s is not None and len(s) <= limit else None

    def refs(self):
        return self._refs


def insns(lines):
    raw = [{"addr": BASE + LEN * i, "length": LEN, "asm": line} for i, line in enumerate(lines)]
    return machinecode.decode(raw)


def names(ins_list):
    out = []
    for ins in ins_list:
        sym = ins.sym or ""
        out.append(sym[:-4] if ins.kind == "call" and sym.endswith("@plt") else None)
    return out


def lea(i, target, reg):
    """``lea`` at line I of the address TARGET into REG."""
    return "lea    0x%x(%%rip),%%%s        # 0x%x" % (target - (BASE + LEN * i + LEN), reg, target)


def log_block(start, func=FUNC, line=120, fmt=FMT):
    """A JANUS_LOG's snprintf(buf, 128, fmt, __FILE__, __FUNCTION__, __LINE__) at line START."""
    return [
        "mov    $0x%x,%%r9d" % line,
        "mov    $0x80,%esi",
        lea(start + 2, func, "r8"),
        lea(start + 3, FILE_, "rcx"),
        lea(start + 4, fmt, "rdx"),
        "call   0x1800 <snprintf@plt>",
    ]


def calls_of(lines):
    got = insns(lines)
    return logname.log_calls(got, names(got), FakeImage())


def test_janus_log_call_found():
    calls = calls_of(log_block(0))
    assert [(c.file, c.function, c.string, c.line) for c in calls] == [
        ("plugins/janus_demo.c", "janus_demo_handler", FUNC, 120)]


def test_lock_debug_print_found():
    # janus_vprintf("[%s:%s:%d:lock] %p\n", __FILE__, __FUNCTION__, __LINE__, lock)
    lines = ["mov    %r12,%r8", "mov    $0xfee,%ecx", lea(2, FUNC, "rdx"),
             lea(3, FILE_, "rsi"), lea(4, LOCKFMT, "rdi"), "call   0x1810 <janus_vprintf@plt>"]
    assert [c.line for c in calls_of(lines)] == [0xfee]


def test_fortified_stack_arguments():
    # __snprintf_chk(buf, 128, 1, 128, fmt, __FILE__, __FUNCTION__, __LINE__)
    lines = ["pushq  $0x77", lea(1, FUNC, "rax"), "push   %rax", lea(3, FMT, "r8"),
             lea(4, FILE_, "r9"), "mov    $0x80,%ecx", "call   0x1820 <__snprintf_chk@plt>"]
    assert [(c.function, c.line) for c in calls_of(lines)] == [("janus_demo_handler", 0x77)]


def test_register_copy_traced():
    lines = [lea(0, FUNC, "rbx"), "mov    %rbx,%r8", "mov    $0x10,%r9d",
             lea(3, FILE_, "rcx"), lea(4, FMT, "rdx"), "call   0x1800 <snprintf@plt>"]
    assert [c.function for c in calls_of(lines)] == ["janus_demo_handler"]


def test_not_log_calls():
    # the identifier slot holds a string that is no identifier
    assert calls_of(log_block(0, func=KEY)) == []
    # not a constant line
    lines = log_block(0)
    lines[0] = "mov    %eax,%r9d"
    assert calls_of(lines) == []
    # a format without %s%s%d
    lines = log_block(0, fmt=FILE_)
    assert calls_of(lines) == []
    # an argument set before a jump target is not traced (another path may set it)
    lines = ["mov    $0x10,%r9d", lea(1, FUNC, "r8"), "nop", lea(3, FILE_, "rcx"),
             lea(4, FMT, "rdx"), "call   0x1800 <snprintf@plt>", "ret"]
    assert len(calls_of(lines)) == 1
    lines[6] = "jmp    0x%x" % (BASE + LEN * 2)
    assert calls_of(lines) == []
    # clobbered by a call in between
    lines = [lea(0, FUNC, "r8"), "call   0x1830 <g_free@plt>", "mov    $0x10,%r9d",
             lea(3, FILE_, "rcx"), lea(4, FMT, "rdx"), "call   0x1800 <snprintf@plt>"]
    assert calls_of(lines) == []


def test_conversions():
    assert logname.conversions("%s%s%s%s[%s:%s:%d:lock] %p\n") == [
        ("s", 0), ("s", 1), ("s", 2), ("s", 3), ("s", 4), ("s", 5), ("d", 6), ("p", 7)]
    assert logname.conversions("100%% %*d %-8.3s %lu %m") == [("d", 1), ("s", 2), ("u", 3)]
    assert logname.conversions("%y") is None


def test_decide():
    calls = calls_of(log_block(0) + log_block(6, line=130))
    ranges = [(BASE, BASE + 0x100)]
    inside = {FUNC: [BASE + 2 * LEN, BASE + 8 * LEN]}
    n = logname.decide(calls, ranges, FakeImage(inside))
    assert (n.name, n.candidates, n.calls) == ("janus_demo_handler", (), 2)
    # the string is used by another function too: listed, not a name
    n = logname.decide(calls, ranges, FakeImage({FUNC: [BASE + 2 * LEN, BASE + 0x400]}))
    assert (n.name, n.candidates) == (None, ("janus_demo_handler",))
    # no reference found by the scan (not a lea): no name
    n = logname.decide(calls, ranges, FakeImage({}))
    assert n.name is None
    # two names (an inlined function that logs): none
    calls = calls_of(log_block(0) + log_block(6, func=OTHER_FUNC))
    n = logname.decide(calls, ranges, FakeImage({FUNC: [BASE + 10], OTHER_FUNC: [BASE + 40]}))
    assert (n.name, n.candidates) == (None, ("janus_demo_handler", "janus_demo_helper"))
    assert logname.decide([], ranges, FakeImage()) is None


def test_frame_text_and_json():
    f = FrameInfo(2, 0x7f0012345678, lib="libjanus_demo.so")
    f.log_name = "janus_demo_handler"
    assert f.where() == ("janus_demo_handler? () from libjanus_demo.so "
                         "[named from its log string]")
    assert f.to_dict()["function"] is None and f.to_dict()["log_name"] == "janus_demo_handler"
    g = FrameInfo(1, 0x55d9f1973978)
    g.log_names = ("a", "b", "c", "d")
    assert g.where() == "?? (0x55d9f1973978) [its log strings name a or b or c] (+1)"
    assert g.to_dict()["log_names"] == ["a", "b", "c", "d"] and "log_name" not in g.to_dict()
    h = FrameInfo(0, 0x1234, function="janus_demo_handler", lib="libjanus_demo.so")
    assert h.where() == "janus_demo_handler () from libjanus_demo.so"
    assert "log_name" not in h.to_dict() and "log_names" not in h.to_dict()
