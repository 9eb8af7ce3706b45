"""The --format json document against docs/janus-gdb.schema.json.

First the validator itself (tests/schema_check.py): it must reject what the
schema forbids.  Then REAL outputs of janus-waitgraph and janus-locks on the
fixtures (scenarios.c and the Janus look-alike janus_scenarios.c, GMutex and
pthread builds, live and core, and a real Janus core when JANUS_PREFIX is
set) are validated and cross-checked: every lock id and thread number a
document refers to exists, group counts match, every thread is in one group.
"""

import json
import os

import pytest

import gdbrun
import schema_check
from schema_check import SchemaError, check_schema, validate

SCHEMA_PATH = os.path.join(gdbrun.ROOT, "docs", "janus-gdb.schema.json")
COMMANDS = ("janus-waitgraph", "janus-locks")
MODES = ["live", "core"]
LOCK_WAITS = ("mutex", "gmutex", "rwlock-read", "rwlock-write", "lock", "libc-lock")


def load_schema():
    with open(SCHEMA_PATH) as f:
        return json.load(f)


SCHEMA = load_schema()


# ---------------------------------------------------------------------------
# The validator
# ---------------------------------------------------------------------------

SMALL = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "minimum": 1},
        "s": {"type": ["string", "null"]},
        "e": {"type": "string", "enum": ["a", "b"]},
        "l": {"type": "array", "items": {"$ref": "#/definitions/item"}},
        "o": {"type": "object", "additionalProperties": {"type": "integer"}},
        "x": {"anyOf": [{"type": "null"}, {"$ref": "#/definitions/item"}]},
        "one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    },
    "required": ["n", "e"],
    "additionalProperties": False,
    "definitions": {
        "item": {"type": "object", "properties": {"id": {"type": "string"}},
                 "required": ["id"], "additionalProperties": False},
    },
}


def test_validator_accepts_a_valid_document():
    doc = {"n": 3, "s": None, "e": "a", "l": [{"id": "M1"}], "o": {"k": 1}, "x": {"id": "x"},
           "one": 1.5}
    assert validate(doc, SMALL) == []


@pytest.mark.parametrize("doc, needle", [
    ({"n": "3", "e": "a"}, "not of type integer"),
    ({"n": True, "e": "a"}, "not of type integer"),           # a bool is not an integer
    ({"n": 1.5, "e": "a"}, "not of type integer"),
    ({"n": 1, "e": "a", "s": 5}, "not of type string/null"),
    ({"n": 1, "e": "a", "l": {}}, "not of type array"),
    ({"n": 1, "e": "a", "l": [{"id": 7}]}, "$.l[0].id"),
    ({"n": 1, "e": "a", "o": {"k": "v"}}, "$.o.k"),
    ({"n": 1}, "required key 'e' is missing"),
    ({"n": 1, "e": "a", "l": [{}]}, "required key 'id' is missing"),
    ({"n": 1, "e": "a", "extra": 0}, "key 'extra' is not allowed"),
    ({"n": 1, "e": "a", "l": [{"id": "M1", "more": 1}]}, "key 'more' is not allowed"),
    ({"n": 1, "e": "c"}, "is not one of"),
    ({"n": 0, "e": "a"}, "less than the minimum"),
    ({"n": 1, "e": "a", "x": {"id": 1}}, "matches 0 of the anyOf"),
    ({"n": 1, "e": "a", "one": 2}, "matches 2 of the oneOf"),   # 2 is an integer and a number
    ([], "not of type object"),
])
def test_validator_rejects(doc, needle):
    errors = validate(doc, SMALL)
    assert errors and any(needle in e for e in errors), errors


def test_validator_enum_does_not_confuse_true_and_1():
    schema = {"enum": [1]}
    assert validate(1, schema) == []
    assert validate(True, schema)
    assert validate(None, {"enum": ["a", None]}) == []


def test_validator_refuses_keywords_it_does_not_implement():
    with pytest.raises(SchemaError):
        validate("x", {"type": "string", "pattern": "^x$"})
    with pytest.raises(SchemaError):
        check_schema({"type": "object", "properties": {"a": {"maxLength": 3}}})
    with pytest.raises(SchemaError):
        check_schema({"$ref": "#/definitions/missing", "definitions": {}})
    with pytest.raises(SchemaError):
        validate(1, {"$ref": "other.json#/x"})


def test_schema_uses_only_the_implemented_subset():
    check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert SCHEMA["properties"]["schema"]["enum"] == ["janus-gdb/1"]


def test_command_line(tmp_path):
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"n": 1, "e": "a"}))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SMALL))
    assert schema_check.main(["schema_check", str(schema), str(doc)]) == 0
    doc.write_text(json.dumps({"n": 1}))
    assert schema_check.main(["schema_check", str(schema), str(doc)]) == 1


def test_rendered_fake_report_is_valid_and_cuts_huge_strings():
    """No gdb: a report with hostile, huge strings from the target."""
    from janus_gdb.analysis import analyze
    from janus_gdb import model
    from janus_gdb.report import json as render_json
    huge = "\x1b[31m\x07" + "x" * 100000
    snap = model.Snapshot(1, 4242, name=huge, frames=[
        model.FrameInfo(0, 0x1000, function=huge, file=huge, line=3, lib=huge)])
    t = model.Thread(snap)
    t.state, t.detail, t.role, t.role_detail = "running", "running", huge, huge
    target = {"kind": "core", "pid": 4242, "executable": huge, "arch": "i386:x86-64",
              "threads": 1, "mutex_impl": None, "also_gmutex": False, "owners": "unknown"}
    report = analyze.Report(target, [t], [], [], [], {}, [huge])
    text = render_json.render(report, "janus-locks")
    assert "\x1b" not in text and "\x07" not in text
    data = check_document(json.loads(text), "janus-locks")
    assert data["groups"][0]["section"] == "other" and data["groups"][0]["count"] == 1
    cut = data["threads"][0]["frames"][0]["function"]
    assert len(cut) == render_json.MAX_STR + 3 and cut.startswith("\x1b[31m\x07")
    for value in (data["threads"][0]["name"], data["target"]["executable"],
                  data["warnings"][0], data["threads"][0]["frames"][0]["lib"]):
        assert len(value) == render_json.MAX_STR + 3


# ---------------------------------------------------------------------------
# Checking one real document
# ---------------------------------------------------------------------------

def check_document(data, command):
    """Schema-valid and internally consistent; returns DATA."""
    errors = validate(data, SCHEMA)
    assert errors == [], "\n".join(errors[:20])
    assert data["command"] == command
    threads = data["threads"]
    nums = [t["num"] for t in threads]
    assert len(set(nums)) == len(nums), "thread numbers not unique"
    lwps = [t["lwp"] for t in threads]
    assert len(set(lwps)) == len(lwps), "LWPs not unique"
    assert data["target"]["threads"] == len(threads)
    nums = set(nums)
    locks = dict((l["id"], l) for l in data["locks"])
    assert len(locks) == len(data["locks"]), "lock ids not unique"
    by_addr = dict((l["address"], l) for l in data["locks"])
    assert len(by_addr) == len(data["locks"]), "lock addresses not unique"

    def lock_ok(lid, where):
        assert lid is None or lid in locks, "%s refers to missing lock %s" % (where, lid)

    def thread_ok(num, where):
        assert num is None or num in nums, "%s refers to missing thread %s" % (where, num)

    def root_ok(root, where):
        if root is None:
            return
        lock_ok(root["lock"], where)
        thread_ok(root["thread"], where)
        if root["cycle"] is not None:
            assert 1 <= root["cycle"] <= len(data["cycles"]), where
        if root["kind"] == "cycle":
            assert root["cycle"] is not None, where
        elif root["kind"] == "thread":
            assert root["thread"] is not None, where
        else:
            assert root["lock"] is not None, where

    for t in threads:
        where = "T%d" % t["num"]
        for lid in t["holds"]:
            lock_ok(lid, where + ".holds")
            rw = locks[lid]["rwlock"]
            readers = [i["lwp"] for i in rw["reader_threads"]] if rw else []
            assert locks[lid]["owner"]["lwp"] == t["lwp"] or t["lwp"] in readers, (
                where, locks[lid])
        for c in t["claims"]:
            lock_ok(c["lock"], where + ".claims")
            if c["lock"] is not None:
                assert locks[c["lock"]]["address"] == c["address"], (where, c)
        w = t["wait"]
        if w is not None and w["kind"] in LOCK_WAITS and w["lock"] is not None:
            assert w["lock"] in by_addr, (where, "waits for an unreported lock", w)
            assert t["num"] in by_addr[w["lock"]]["waiters"], (where, w)
        levels = [f["level"] for f in t["frames"]]
        assert levels == sorted(set(levels)), (where, levels)
        if t["site_frame"] is not None:
            assert t["site_frame"] in levels, where
    for l in data["locks"]:
        where = l["id"]
        for n in l["waiters"] + l["candidates"]:
            thread_ok(n, where)
        thread_ok(l["owner"]["thread"], where + ".owner")
        thread_ok(l["leaked_by"], where + ".leaked_by")
        if l["owner"]["thread"] is not None:
            owner = [t for t in threads if t["num"] == l["owner"]["thread"]][0]
            assert owner["lwp"] == l["owner"]["lwp"] and l["owner"]["alive"] is True, where
            assert l["id"] in owner["holds"], where
        if l["inference"] is not None:
            thread_ok(l["inference"]["thread"], where + ".inference")
    for e in data["edges"]:
        thread_ok(e["from"], "edge")
        thread_ok(e["to"], "edge")
        lock_ok(e["lock"], "edge")
        assert (e["kind"] == "lock") == (e["lock"] is not None), e
    assert data["deadlocks"] == len(data["cycles"])
    for i, cyc in enumerate(data["cycles"]):
        assert cyc["id"] == i + 1
        assert cyc["threads"] == [e["from"] for e in cyc["edges"]], cyc
        for j, e in enumerate(cyc["edges"]):
            thread_ok(e["from"], "cycle")
            lock_ok(e["lock"], "cycle")
            assert e["to"] == cyc["edges"][(j + 1) % len(cyc["edges"])]["from"], cyc
            assert e in data["edges"], (cyc, e)
    assert data["verdict"].startswith("Found" if data["cycles"] else "No deadlock found")
    for b in data["blocked"]:
        thread_ok(b["thread"], "blocked")
        root_ok(b["behind"], "blocked T%d" % b["thread"])
    behind = dict((b["thread"], b["behind"]) for b in data["blocked"])
    in_cycle = set(n for c in data["cycles"] for n in c["threads"])
    seen = []
    for g in data["groups"]:
        where = "group %s" % g["threads"]
        assert g["count"] == len(g["threads"]), where
        for n in g["threads"]:
            thread_ok(n, where)
        seen.extend(g["threads"])
        lock_ok(g["waits_for"], where)
        thread_ok(g["joins"], where)
        root_ok(g["blocked_behind"], where)
        members = [t for t in threads if t["num"] in g["threads"]]
        if g["state"] is not None:
            assert set(t["state"] for t in members) == {g["state"]}, where
        if g["section"] == "blocked":
            assert all(behind.get(n) == g["blocked_behind"] for n in g["threads"]), where
        else:
            assert not any(n in behind for n in g["threads"]), where
        assert (g["section"] == "cycle") == all(n in in_cycle for n in g["threads"]), where
        if g["waits_for"] is not None:
            addr = locks[g["waits_for"]]["address"]
            assert all(t["wait"]["lock"] == addr for t in members), where
    assert sorted(seen) == sorted(nums), "every thread must be in exactly one group"
    # the roots: one per distinct blocked[].behind, together all the blocked threads,
    # the one blocking the most first (deadlocks before all)
    kinds = set()
    for r in data["roots"]:
        root_ok({"kind": r["root"], "thread": r["thread"], "lock": r["lock"],
                 "cycle": r["cycle"]}, "roots")
        for n in r["candidates"]:
            thread_ok(n, "roots.candidates")
        kinds.add(r["kind"])
    assert sum(r["blocked"] for r in data["roots"]) == len(data["blocked"]), data["roots"]
    rest = [r["blocked"] for r in data["roots"] if r["root"] != "cycle"]
    assert rest == sorted(rest, reverse=True), data["roots"]
    if data["cycles"]:
        assert data["verdict_kind"] == "deadlock"
    elif any(r["stuck"] for r in data["roots"]):
        assert data["verdict_kind"] == "hang"
    else:
        assert data["verdict_kind"] in ("undetermined", "none")
    for l in data["locks"]:
        for n in l["possible_owners"]:
            thread_ok(n, l["id"] + ".possible_owners")
            assert n not in l["waiters"], l
        assert l["possible_owner_count"] >= len(l["possible_owners"])
        assert not (l["leaked"] and l["possible_owners"]), l
    return data


def both_commands(run):
    """RUN(command) -> gdb stdout; checks both commands' documents agree."""
    docs = {}
    for command in COMMANDS:
        docs[command] = check_document(gdbrun.extract_json(run(command + " --format json")),
                                       command)
    wg, lk = docs["janus-waitgraph"], docs["janus-locks"]
    assert [l["id"] for l in wg["locks"]] == [l["id"] for l in lk["locks"]]
    assert [t["num"] for t in wg["threads"]] == [t["num"] for t in lk["threads"]]
    return docs


# ---------------------------------------------------------------------------
# scenarios.c (tests/conftest.py fixtures): pthread and GMutex, live and core
# ---------------------------------------------------------------------------

SCENARIOS = [("pthread_cycle", "debug"), ("pthread_cycle", "stripped"), ("gmutex_cycle", "debug"),
             ("gmutex_pileup", "debug"), ("dead_owner", "debug"), ("join_cycle", "debug"),
             ("rwlock_writer", "debug"), ("healthy", "debug")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name, variant", SCENARIOS)
def test_scenarios_validate(scenarios, name, variant, mode):
    def run(command):
        res, _ = scenarios.analyze(name, mode, variant, command=command)
        return res.stdout
    docs = both_commands(run)
    data = docs["janus-waitgraph"]
    assert data["target"]["kind"] == mode
    if name.endswith("cycle"):
        assert data["cycles"] and any(g["section"] == "cycle" for g in data["groups"])
    if name == "gmutex_pileup":
        assert any(g["section"] == "blocked" and g["count"] > 1 for g in data["groups"])


# ---------------------------------------------------------------------------
# janus_scenarios.c (the fixtures of test_janus_fixtures.py)
# ---------------------------------------------------------------------------

JANUS_SCENARIOS = ["pli_inversion", "rooms_pileup", "self_deadlock", "leaked_lock",
                   "leaked_rooms", "join_holding", "usleep_holder"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", ["gmutex", "pthread"])
@pytest.mark.parametrize("name", JANUS_SCENARIOS)
def test_janus_scenarios_validate(janus, name, variant, mode):
    docs = both_commands(lambda command: janus.run(name, variant, mode, command))
    target = docs["janus-waitgraph"]["target"]
    assert target["kind"] == mode and target["mutex_impl"] == variant
    assert target["owners"] == ("exact" if variant == "pthread" else "inferred")
    if name.startswith("leaked_"):
        assert any(l["leaked"] for l in docs["janus-waitgraph"]["locks"])


def test_janus_lock_log_option_validates(janus):
    """--lock-log adds locklog evidence and leak sites."""
    out = janus.run("leaked_lock", "gmutex", "core", "janus-waitgraph --format json --lock-log %s"
                    % janus.locklog("leaked_lock", "gmutex"))
    check_document(gdbrun.extract_json(out), "janus-waitgraph")


# ---------------------------------------------------------------------------
# A real Janus core (test_janus_real.py's stall), only when JANUS_PREFIX is set
# ---------------------------------------------------------------------------

if os.environ.get("JANUS_PREFIX"):
    import test_janus_real
    from test_janus_real import prefix, stall  # noqa: F401  (module fixtures, reused)

    def test_real_janus_core_validates(stall):
        res, j = stall
        docs = both_commands(lambda command: test_janus_real.analyze(res, j, command).stdout)
        data = docs["janus-waitgraph"]
        assert data["target"]["kind"] == "core" and data["target"]["mutex_impl"] == "gmutex"
        assert any(g["section"] == "blocked" and g["count"] == test_janus_real.N_WAITERS
                   for g in data["groups"]), data["groups"]
        # the Janus release of the core (issue 15): the build's configure.ac says which
        import janusd
        for doc in docs.values():
            assert doc["target"]["janus_version"]["text"] == janusd.source_version(j.prefix)
else:
    def test_real_janus_core_validates():
        pytest.skip("JANUS_PREFIX is not set (tests/run.sh sets it after scripts/build-janus)")
