"""Unit tests of janus_gdb.janus.locklog: parsing Janus's lock-debug log."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.janus import locklog  # noqa: E402
from janus_gdb.janus.locklog import LockLogError, parse, read_file  # noqa: E402

A = 0x55d0c3e5a1c0
B = 0x55d0c3e5b000


def test_plain_records_and_site_fields():
    log = parse([
        "[plugins/janus_videoroom.c:janus_videoroom_handler:9155:lock] 0x55d0c3e5a1c0\n",
        "[janus.c:janus_process_incoming_request:1234:lock] 0x55d0c3e5b000\n",
        "[janus.c:janus_process_incoming_request:1240:unlock] 0x55d0c3e5b000\n",
    ])
    assert log.events == 3 and log.bad == 0 and log.lines == 3
    out = log.outstanding()
    assert list(out) == [A]
    site = out[A]
    assert site.file == "janus_videoroom.c"
    assert site.path == "plugins/janus_videoroom.c"
    assert site.function == "janus_videoroom_handler"
    assert site.line == 9155 and isinstance(site.line, int)
    assert site.op == "lock" and not site.trylock
    assert site.lineno == 1
    last = log.last(B)
    assert (last.op, last.line, last.lineno) == ("unlock", 1240, 3)
    assert log.last(0x1234) is None
    assert log.addresses() == [A, B]
    assert "Site(" in repr(site) and "LockLog(" in repr(log)


def test_prefixes_timestamps_levels_and_colours():
    log = parse([
        "[Tue Nov 25 10:01:02 2026] [plugins/janus_videoroom.c:janus_videoroom_handler:9155:lock] 0x55d0c3e5a1c0",
        "[WARN] [ice.c:janus_ice_relay_rtcp:172:lock] 0x55d0c3e5b000\r\n",
        "\x1b[33m[WARN]\x1b[0m [Tue Nov 25 10:01:03 2026] [ice.c:janus_ice_relay_rtcp:180:unlock] 0x55d0c3e5b000\n",
        "\x1b[1;31m[ERR]\x1b[0m [sdp.c:janus_sdp_process:55:lock] \x1b[0m0x10\x1b[0m",
        "Some unrelated line mentioning a lock",
        "",
        "[Tue Nov 25 10:01:04 2026] Creating new session: 1234",
    ])
    assert log.events == 4 and log.bad == 0 and log.lines == 7
    assert sorted(log.outstanding()) == [0x10, A]
    assert log.outstanding()[0x10].file == "sdp.c"


def test_nil_address():
    log = parse(["[janus.c:f:10:lock] (nil)", "[janus.c:g:11:unlock] (nil)", "[janus.c:h:12:lock] (nil)"])
    assert log.events == 3
    assert log.outstanding()[0].function == "h"
    assert locklog.parse_addr("(nil)") == 0
    assert locklog.parse_addr("0x1F") == 31


def test_malformed_lines_counted_not_raised():
    log = parse([
        "[janus.c:f:10:lock]",
        "[janus.c:f:ten:lock] 0x10",
        "[janus.c:f:10:lock] 0xZZ",
        "[janus.c:f:10:unlock] garbage",
        "[janus.c:f:10:trylock] ",
        "[:f:10:lock] 0x10",
        "[janus.c:10:lock] 0x10",
        "x" * 5000 + "[janus.c:f:10:lock] 0x10",
        "\x00\xff[\x1b[janus.c:f:1:lock]] 0x",
        "random text lock] here",
        "[janus.c:f:10:lock] 0x20",
    ])
    assert log.events == 1
    assert log.bad == 9
    assert list(log.outstanding()) == [0x20]


def test_trylock_counts_as_lock():
    log = parse([
        "[janus.c:f:10:lock] 0x10",
        "[janus.c:g:20:trylock] 0x10",
        "[janus.c:f:12:unlock] 0x10",
        "[janus.c:h:30:trylock] 0x20",
    ])
    out = log.outstanding()
    assert out[0x10].trylock and out[0x10].function == "g"
    assert out[0x20].trylock and out[0x20].op == "trylock"


def test_outstanding_computation():
    log = parse([
        "[a.c:f:1:lock] 0x10",       # locked and unlocked
        "[a.c:f:2:unlock] 0x10",
        "[a.c:f:3:unlock] 0x30",     # unlock without lock (log started later)
        "[a.c:owner:4:lock] 0x40",   # owner, then two waiters printed before blocking
        "[a.c:waiter1:5:lock] 0x40",
        "[a.c:waiter2:6:lock] 0x40",
        "[a.c:f:7:lock] 0x10",       # locked again: outstanding
        "[a.c:g:8:lock] 0x50",
        "[a.c:g:9:unlock] 0x50",
        "[a.c:g:10:lock] 0x50",
    ])
    assert log.unmatched == 1
    out = log.outstanding()
    assert sorted(out) == [0x10, 0x40, 0x50]
    assert out[0x10].line == 7 and out[0x50].line == 10
    assert out[0x40].function == "owner"
    assert log.outstanding(latest=True)[0x40].function == "waiter2"
    assert [s.function for s in log.pending(0x40)] == ["owner", "waiter1", "waiter2"]
    assert log.pending(0x30) == [] and log.pending(0x99) == []
    assert log.last(0x30).op == "unlock"

    # The owner unlocks: the next waiter is the probable owner.
    log = parse(["[a.c:owner:4:lock] 0x40", "[a.c:waiter1:5:lock] 0x40", "[a.c:owner:9:unlock] 0x40"])
    assert log.outstanding()[0x40].function == "waiter1"


def test_pending_is_bounded():
    log = parse(["[a.c:f:%d:lock] 0x10" % k for k in range(1, 1000)])
    assert len(log.pending(0x10)) == locklog.MAX_PENDING
    assert log.outstanding()[0x10].line == 1


def test_bytes_input_and_text_input():
    log = parse([b"[a.c:f:1:lock] 0x10\n", b"\xff\xfe garbage \xff:lock]\n",
                 b"[\xffb.c:g:2:lock] 0x20\n", None, 42])
    assert log.events == 2 and log.bad == 1
    assert log.outstanding()[0x20].path == "\ufffdb.c"
    log = parse("[a.c:f:1:lock] 0x10\n[a.c:f:2:unlock] 0x10\n[a.c:f:3:lock] 0x11\n")
    assert log.events == 3 and list(log.outstanding()) == [0x11]
    log = parse(b"[a.c:f:1:lock] 0x10\r\n")
    assert list(log.outstanding()) == [0x10]


def test_read_file(tmp_path):
    p = tmp_path / "janus.log"
    p.write_bytes(b"[Tue Nov 25 10:01:02 2026] [a.c:f:1:lock] 0x10\n"
                  + b"y" * 100000 + b"\n"
                  + b"[a.c:f:2:lock] 0x20\n"
                  + b"[a.c:f:3:unlock] 0x20")
    log = read_file(str(p))
    assert log.events == 3 and log.bad == 1 and log.lines == 4 and not log.truncated
    assert list(log.outstanding()) == [0x10]
    assert log.last(0x20).lineno == 4

    small = read_file(str(p), max_bytes=40)
    assert small.truncated and small.events == 1
    assert small.last(0x20).op == "unlock"


def test_unreadable_file_error(tmp_path):
    for path in (str(tmp_path / "missing.log"), str(tmp_path)):
        with pytest.raises(LockLogError) as err:
            read_file(path)
        msg = str(err.value)
        assert "\n" not in msg and path in msg
    assert issubclass(LockLogError, Exception)
