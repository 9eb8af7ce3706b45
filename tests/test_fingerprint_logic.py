"""Unit tests of the pure logic of issue 15: fingerprint parts and hashing
(janus_gdb/analysis/fingerprint.py), catalogue checks (janus/knownhangs.py)
and matching (analysis/knownbugs.py).  The real-gdb tests are in
tests/test_fingerprints.py and the real-Janus ones in tests/test_janus_real.py."""
import copy

import pytest

from janus_gdb.analysis import fingerprint, knownbugs
from janus_gdb.janus import knownhangs
from janus_gdb.model import Lock, ObjectRef


def field_lock(addr, type_name, field, id_):
    lock = Lock(addr, "gmutex")
    lock.obj = ObjectRef(type_name, addr - 8, field)
    lock.id = id_
    return lock


def global_lock(addr, source, name, id_):
    lock = Lock(addr, "gmutex")
    lock.symbol = name
    lock.source_file = source
    lock.id = id_
    return lock


@pytest.mark.parametrize("raw,want", [
    ("janus_videoroom_handler", "janus_videoroom_handler"),
    ("janus_videoroom_handler.constprop.0", "janus_videoroom_handler"),
    ("janus_ice_relay_rtcp.isra.0.part.0", "janus_ice_relay_rtcp"),
    ("clear_outbuf.cold", "clear_outbuf"),
    ("Room::join(std::string const&)", "Room::join"),
    ("f(int) [clone .constprop.0]", "f"),
    ("(anonymous namespace)::worker()", "(anonymous namespace)::worker"),
    (None, None),
    ("", None),
])
def test_function_name(raw, want):
    assert fingerprint.function_name(raw) == want


def test_compute_is_order_free_and_sensitive_to_every_part():
    parts = ["hold a.b in f", "wait a.b in g", "hold c.d in h"]
    fp = fingerprint.compute("cycle", parts)
    assert fp.startswith("cycle-") and len(fp) == len("cycle-") + fingerprint.DIGITS
    assert fingerprint.compute("cycle", list(reversed(parts))) == fp
    for i in range(len(parts)):
        changed = list(parts)
        changed[i] += "x"
        assert fingerprint.compute("cycle", changed) != fp
    assert fingerprint.compute("cycle", parts[:-1]) != fp
    assert fingerprint.compute("stall", parts) != fp.replace("cycle", "stall")


def test_lock_key_without_class():
    lock = Lock(0x1000, "gmutex")
    assert fingerprint.lock_key(lock) == "unnamed gmutex"
    lock.symbol = "libfoo.so+0x1234"              # an address: not stable, not used
    assert fingerprint.lock_key(lock) == "unnamed gmutex"
    lock.symbol = "big_lock"                       # a symbol with no source file
    assert fingerprint.lock_key(lock) == "symbol big_lock"
    lock.source_file = "/src/janus.c"
    assert fingerprint.lock_key(lock) == "janus.c: big_lock"


def test_leak_functions():
    lock = Lock(0x1000, "gmutex")
    assert fingerprint.leak_functions(lock) == set()
    lock.missing_unlocks = [{"function": "a"}, {"function": "a.part.0"}]
    assert fingerprint.leak_functions(lock) == {"a"}
    lock.missing_unlocks.append({"function": "b"})
    assert fingerprint.leak_functions(lock) == set()      # ambiguous: none named
    lock.leak_site = "janus.c:3911 in janus_plugin_handle_sdp (lock-debug log line 12)"
    lock.leak_function = "janus_plugin_handle_sdp"
    assert fingerprint.leak_functions(lock) == {"janus_plugin_handle_sdp"}


ENTRY = {
    "id": "gh-3510", "ref": "#3510", "title": "VideoRoom PLI vs Admin handle_info",
    "kind": "cycle",
    "locks": ["janus_videoroom_publisher.streams_mutex", "janus_ice_handle.mutex"],
    "taken_in": {"janus_videoroom_publisher.streams_mutex": ["janus_videoroom_handler"],
                 "janus_ice_handle.mutex": ["janus_process_incoming_admin_request"]},
    "waited_in": {"janus_ice_handle.mutex": ["janus_ice_relay_rtcp"],
                  "janus_videoroom_publisher.streams_mutex": ["janus_videoroom_query_session"]},
    "holder_waits_in": [],
    "affects": {"from": "1.3.0", "to": "1.3.0"}, "fixed_in": "1.3.1",
    "advice": "upgrade to 1.3.1 or later", "evidence": "test",
}


def cycle_finding(relay="janus_ice_relay_rtcp"):
    f = fingerprint.Finding("cycle", None, "deadlock #1")
    s = field_lock(0x5000, "janus_videoroom_publisher", "streams_mutex", "M2")
    h = field_lock(0x6000, "janus_ice_handle", "mutex", "M1")
    f.locks = [h, s]
    f.taken = {"janus_videoroom_publisher.streams_mutex": {"janus_videoroom_handler"},
               "janus_ice_handle.mutex": {"janus_process_incoming_admin_request"}}
    f.waited = {"janus_ice_handle.mutex": {relay},
                "janus_videoroom_publisher.streams_mutex": {"janus_videoroom_query_session"}}
    return fingerprint._finish(f)


def test_exact_match_in_range_says_this_is():
    m = knownbugs.match_one(cycle_finding(), ENTRY, {"text": "1.3.0", "how": "test"})
    assert m.strength == "exact" and m.in_range is True and m.same_bug()
    assert m.sentence() == ("This is janus-gateway #3510 (VideoRoom PLI vs Admin handle_info; "
                            "affects 1.3.0, fixed in 1.3.1): upgrade to 1.3.1 or later")
    assert m.evidence().startswith("exact: same cycle of ")
    assert "Janus 1.3.0 (test) is affected" in m.evidence()


def test_outside_range_or_unknown_version_is_only_similar():
    m = knownbugs.match_one(cycle_finding(), ENTRY, {"text": "1.1.2"})
    assert m.in_range is False and not m.same_bug()
    assert m.sentence().startswith("Similar to janus-gateway #3510") and "not that bug" in \
        m.sentence()
    m = knownbugs.match_one(cycle_finding(), ENTRY, {"text": "1.3.1"})
    assert m.in_range is False
    for version in (None, {"text": None}, {"text": "garbage"}):
        m = knownbugs.match_one(cycle_finding(), ENTRY, version)
        assert m.in_range is None and not m.same_bug()
        assert "version is unknown" in m.sentence()


def test_other_functions_match_by_locks_only():
    m = knownbugs.match_one(cycle_finding(relay="janus_ice_send_pli"), ENTRY, {"text": "1.3.0"})
    assert m.strength == "locks"
    assert m.sentence().startswith("This may be janus-gateway #3510")
    assert "not seen: waited janus_ice_handle.mutex in janus_ice_relay_rtcp" in m.evidence()


def test_no_match_for_other_locks_or_kinds():
    f = cycle_finding()
    other = copy.deepcopy(ENTRY)
    other["locks"] = ["janus_videoroom_publisher.streams_mutex", "janus_videoroom.mutex"]
    other["taken_in"] = {}
    other["waited_in"] = {}
    assert knownbugs.match_one(f, other, None) is None
    stall = dict(ENTRY, kind="stall")
    assert knownbugs.match_one(f, stall, None) is None
    # a subset of the locks is not the same bug
    fewer = copy.deepcopy(ENTRY)
    fewer["locks"] = ["janus_ice_handle.mutex"]
    fewer["taken_in"] = {}
    fewer["waited_in"] = {}
    assert knownbugs.match_one(f, fewer, None) is None
    assert knownbugs.best_match(f, [other, stall, fewer], None) is None


def test_global_matches_by_name_when_only_the_file_differs():
    entry = {"id": "leak-rooms", "ref": "#3478", "title": "rooms_mutex leaked", "kind": "leak",
             "locks": ["janus_videoroom.c: rooms_mutex"],
             "taken_in": {"janus_videoroom.c: rooms_mutex": ["janus_videoroom_handler"]},
             "affects": {"from": None, "to": "1.2.1"}, "fixed_in": "1.2.2", "advice": "upgrade"}
    f = fingerprint.Finding("leak", None, "M1")
    f.locks = [global_lock(0x1000, "model.c", "rooms_mutex", "M1")]
    f.taken = {"model.c: rooms_mutex": {"janus_videoroom_handler"}}
    fingerprint._finish(f)
    m = knownbugs.match_one(f, entry, {"text": "1.0.0"})
    assert m.strength == "exact" and m.in_range is True
    assert "matched by variable name only" in m.evidence()
    assert "affects releases up to 1.2.1, fixed in 1.2.2" in m.sentence()
    # ... but by its name alone only when the functions agree: another
    # plugin's rooms_mutex leaked elsewhere is not this bug, not even similar
    f.taken = {"model.c: rooms_mutex": {"janus_audiobridge_handler"}}
    fingerprint._finish(f)
    assert knownbugs.match_one(f, entry, {"text": "1.0.0"}) is None
    f.locks = [global_lock(0x1000, "janus_videoroom.c", "rooms_mutex", "M1")]
    assert knownbugs.match_one(f, entry, {"text": "1.0.0"}).strength == "locks"
    # another variable of the same file is not it
    f.locks = [global_lock(0x1000, "janus_videoroom.c", "sessions_mutex", "M1")]
    assert knownbugs.match_one(f, entry, None) is None


def test_best_match_prefers_exact_then_affected():
    f = cycle_finding()
    later = dict(ENTRY, id="later", affects={"from": "1.4.0", "to": "1.4.1"}, fixed_in=None)
    assert knownbugs.best_match(f, [later, ENTRY], {"text": "1.3.0"}).entry["id"] == "gh-3510"
    assert knownbugs.best_match(f, [later, ENTRY], {"text": "1.4.1"}).entry["id"] == "later"
    loose = copy.deepcopy(ENTRY)
    loose["id"] = "loose"
    loose["waited_in"]["janus_ice_handle.mutex"] = ["elsewhere"]
    assert knownbugs.best_match(f, [loose, ENTRY], {"text": "1.3.0"}).entry["id"] == "gh-3510"


def test_catalogue_checker_rejects_bad_entries():
    good = copy.deepcopy(ENTRY)
    assert knownhangs.problems(good) == []
    cases = [
        ("kind", "hang"), ("locks", ["not a class"]), ("locks", []),
        ("affects", {"from": "1.4.0", "to": "1.3.0"}), ("affects", {"from": None, "to": "1.x"}),
        ("fixed_in", "1.3.0"), ("advice", ""),
        ("taken_in", {"janus_videoroom.mutex": ["f"]}),   # a class not among the locks
    ]
    for key, value in cases:
        bad = copy.deepcopy(ENTRY)
        bad[key] = value
        assert knownhangs.problems(bad), (key, value)
    entries, problems = knownhangs.check({"schema": knownhangs.SCHEMA,
                                          "entries": [good, copy.deepcopy(good)]})
    assert len(entries) == 1 and "duplicate id" in problems[0]
    assert knownhangs.check({"entries": []})[1]


def test_catalogue_that_cannot_be_read_is_a_problem_not_an_exception(tmp_path):
    missing = str(tmp_path / "none.json")
    entries, problems = knownhangs.load(missing)
    assert entries == [] and "could not be read" in problems[0]
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x00{not json\xff")
    entries, problems = knownhangs.load(str(garbage))
    assert entries == [] and problems
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"schema": "something-else", "entries": []}')
    assert knownhangs.load(str(wrong)) == ([], ["not a %s document" % knownhangs.SCHEMA])
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (knownhangs.MAX_BYTES + 1))
    assert "larger than" in knownhangs.load(str(huge))[1][0]
