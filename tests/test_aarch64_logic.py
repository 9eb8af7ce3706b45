"""Unit tests of aarch64 system-call decoding (janus_gdb/target/syscalls.py
decode_svc_registers, analysis/classify.py) and of the verdict when threads
could not be read (analysis/verdict.py): fake registers, no gdb.
test_aarch64.py proves the same on qemu's cores and gdbstub."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.analysis import analyze, classify, verdict  # noqa: E402
from janus_gdb.model import FrameInfo, Snapshot  # noqa: E402
from janus_gdb.report import text as render_text  # noqa: E402
from janus_gdb.target import syscalls  # noqa: E402
from test_logic import FakeMemory  # noqa: E402

ARCH = "aarch64"
SVC = 0xd4000001
MOV = 0xaa0003f3          # mov x19, x0: no svc
M1 = 0x420200


def regs(x8, x0, x1=0x80, x2=2, at=MOV, before=SVC, pc=0x5500a3eb20):
    values = {"x8": x8, "x0": x0 & ((1 << 64) - 1), "x1": x1, "x2": x2}
    return syscalls.decode_svc_registers(ARCH, pc, at, before, values.get)


def lock_frames():
    return [FrameInfo(0, 0x1000, None, lib="libc.so.6", system=True),
            FrameInfo(1, 0x1010, "pthread_mutex_lock", lib="libc.so.6", system=True),
            FrameInfo(2, 0x2000, "take", "app.c", 12),
            FrameInfo(3, 0x1200, "start_thread", lib="libc.so.6", system=True)]


def test_futex_after_svc_is_read_from_x8_and_x0_to_x2():
    r = regs(98, M1)
    assert r == {"svc": "after", "sysno": 98, "args": (M1, 0x80, 2)}
    assert syscalls.describe_syscall(ARCH, 98) == ("futex", "futex")


def test_at_svc_counts_too():
    # a call rewound for a signal or a ptrace stop: the pc is at the svc
    assert regs(98, M1, at=SVC, before=MOV)["svc"] == "at"


def test_no_svc_means_not_in_a_system_call():
    # x8 = 98 left over from an earlier call must not be taken for a futex wait
    r = regs(98, M1, at=MOV, before=MOV)
    assert r == {"sysno": (1 << 64) - 1}
    s = Snapshot(1, 100, None, r, lock_frames())
    assert classify.classify(s, ARCH, FakeMemory(), {100})[0] == "running"


def test_unreadable_code_is_unknown_with_the_reason():
    r = regs(98, M1, at=None, before=None)
    state, detail, wait, _ = classify.classify(Snapshot(1, 100, None, r, []), ARCH,
                                               FakeMemory(), {100})
    assert state == "unknown" and "cannot be read" in detail and wait is None


def test_eintr_is_unknown_not_a_futex_at_minus_four():
    r = regs(98, -4)
    assert r.get("eintr") and "args" not in r
    state, detail, wait, name = classify.classify(Snapshot(1, 100, None, r, lock_frames()),
                                                  ARCH, FakeMemory(), {100})
    assert (state, wait, name) == ("unknown", None, "futex")
    assert "EINTR" in detail and "pthread mutex" in detail


def test_eintr_in_a_sleep_or_pause_is_read_from_the_frames():
    sleep = [FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6", system=True)]
    st = classify.classify(Snapshot(1, 100, None, regs(115, -4), sleep), ARCH,
                           FakeMemory(), {100})
    assert st[0] == "sleep" and "EINTR" in st[1]
    pause = [FrameInfo(0, 0x1000, "pause", lib="libc.so.6", system=True)]
    st = classify.classify(Snapshot(1, 100, None, regs(133, -4), pause), ARCH,
                           FakeMemory(), {100})
    assert st[0] == "signal-wait"


def test_a_returned_futex_is_not_a_wait_on_its_return_value():
    # pc after the svc, x0 = 0 or -11: the call returned, x0 is no address
    for x0 in (0, -11, 3):
        st = classify.classify(Snapshot(1, 100, None, regs(98, x0), lock_frames()), ARCH,
                               FakeMemory(), {100})
        assert st[0] == "unknown" and "returned from futex" in st[1], (x0, st)


def test_aarch64_table_has_no_x86_numbers():
    names = dict((v[0], k) for k, v in syscalls.AARCH64_SYSCALLS.items())
    assert names["ppoll"] == 73 and names["epoll_pwait"] == 22 and names["read"] == 63
    assert names["nanosleep"] == 101 and names["wait4"] == 260 and names["recvmsg"] == 212
    assert "poll" not in names and "epoll_wait" not in names and "select" not in names
    assert syscalls.FUTEX_NR[ARCH] == 98


def _report(snaps, arch=ARCH):
    return analyze.build_report(snaps, arch, FakeMemory(), {"kind": "core", "pid": 100}, [])


def test_undecoded_architecture_is_undetermined_not_no_deadlock():
    snaps = [Snapshot(1, 100, None, {}, lock_frames()), Snapshot(2, 101, None, {}, [])]
    r = _report(snaps, "riscv:rv64")
    assert verdict.kind(r) == "undetermined" and verdict.exit_status(r) == 4
    head = render_text.verdict(r)
    assert head.startswith("Undetermined: no thread's state could be read"), head
    assert "No deadlock" not in head
    assert any("not decoded" in w for w in r.warnings), r.warnings


def test_one_unread_thread_makes_an_empty_verdict_undetermined():
    sleep = [FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6", system=True)]
    snaps = [Snapshot(1, 100, None, regs(98, -4), lock_frames()),
             Snapshot(2, 101, None, regs(115, 0x4000), sleep)]
    r = _report(snaps)
    assert r.thread(2).state == "sleep"
    assert verdict.kind(r) == "undetermined"
    head = render_text.verdict(r)
    assert head.startswith("Undetermined: 1 of 2 threads could not be read (T1"), head


def test_all_threads_read_keeps_no_deadlock():
    sleep = [FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6", system=True)]
    r = _report([Snapshot(1, 100, None, regs(115, 0x4000), sleep)])
    assert verdict.kind(r) == "none" and render_text.verdict(r) == "No deadlock found."
