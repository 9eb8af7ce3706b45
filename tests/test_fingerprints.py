"""Hang fingerprints and the known-bug catalogue on the Janus look-alike
hangs (tests/fixtures/janus_scenarios.c), issue 15.

The same bug must give the same fingerprint whatever changes between two
occurrences: GMutex or pthread build, -O2 or -O0, live or core, how many
request threads pile up.  Different bugs give different fingerprints.  Each
scenario re-enacts a real Janus hang and matches that bug's catalogue entry,
as "This is" only when the target's Janus version (JANUS_FIXTURE_VERSION,
read back by janus-gdb from the process) is among the affected releases.
What the parts must say comes from the fixture's own source (the functions
around its SITE markers), not from this file.
"""
import os
import re

import pytest

import gdbrun
from test_janus_fixtures import CFLAGS, DEFINES, SITES, SRC

# scenario -> (finding kind, catalogue entry it re-enacts)
SCENARIOS = {
    "pli_inversion": "cycle",
    "rooms_pileup": "cycle",
    "self_deadlock": "cycle",
    "leaked_lock": "leak",
    "leaked_rooms": "leak",
    "join_holding": "cycle",
    "usleep_holder": "stall",
}

with open(SRC) as _f:
    SOURCE_LINES = _f.read().split("\n")

_DEF_RE = re.compile(r"^(?:static\s+)?(?:[\w\s\*]+?)\b([A-Za-z_]\w*)\s*\(")


def function_at(line):
    """The C function whose body holds LINE of the fixture (a definition at column 0)."""
    for i in range(line - 1, -1, -1):
        text = SOURCE_LINES[i]
        if text[:1].isalpha() and "(" in text and not text.rstrip().endswith(";"):
            m = _DEF_RE.match(text)
            if m:
                return m.group(1)
    raise AssertionError("no function around line %d" % line)


class Builds(object):
    """Fixture builds, running scenarios and their JSON reports, once per module."""

    def __init__(self, tmp):
        self.dir = tmp
        self.exes = {}
        self.running = []
        self.cores = []
        self.cache = {}

    def exe(self, build):
        if build not in self.exes:
            src, variant, opt = build
            out = os.path.join(self.dir, "%s_%s_%s" % (os.path.basename(src)[:-2], variant, opt))
            flags = CFLAGS + DEFINES[variant] + (["-O0"] if opt == "O0" else [])
            self.exes[build] = gdbrun.compile_c(src, out, defines=flags)
        return self.exes[build]

    def report(self, name, variant="gmutex", opt="O2", mode="core", workers=None,
               version=None, fmt="json", src=SRC):
        key = (name, variant, opt, mode, workers, version, fmt, src)
        if key in self.cache:
            return self.cache[key]
        env = dict(os.environ)
        env.pop("JANUS_FIXTURE_VERSION", None)
        env.pop("JANUS_FIXTURE_WORKERS", None)
        if workers is not None:
            env["JANUS_FIXTURE_WORKERS"] = str(workers)
        if version is not None:
            env["JANUS_FIXTURE_VERSION"] = version
        exe = self.exe((src, variant, opt))
        args = [name]
        if name.startswith("leaked_"):
            args.append(os.path.join(self.dir, "locklog.%s.%d" % (name, len(self.cache))))
        sc = gdbrun.Scenario(exe, args, env=env)
        self.running.append(sc)
        command = {"json": "janus-waitgraph --format json", "text": "janus-waitgraph",
                   "locks": "janus-locks"}[fmt]
        if mode == "live":
            res = gdbrun.gdb([command], pid=sc.pid)
        else:
            core = sc.gcore(os.path.join(self.dir, "core.%d" % len(self.cache)))
            self.cores.append(core)
            res = gdbrun.gdb([command], exe=exe, core=core)
        both = res.stdout + res.stderr
        assert "Traceback" not in both and "Python Exception" not in both, both
        if fmt == "json":
            got = (gdbrun.extract_json(res.stdout), sc.truth)
        elif fmt == "locks":
            m = re.search(r"^\d+ locks? held or waited for\..*", res.stdout, re.M | re.S)
            got = (m.group(0) if m else res.stdout, sc.truth)
        else:
            got = (gdbrun.extract_report(res.stdout), sc.truth)
        sc.kill()
        self.cache[key] = got
        return got

    def close(self):
        gdbrun.close_fixtures(self.running, self.cores)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    b = Builds(str(tmp_path_factory.mktemp("fingerprints")))
    yield b
    b.close()


def only_finding(data, kind):
    found = data["findings"]
    assert len(found) == 1, found
    f = found[0]
    assert f["kind"] == kind, f
    assert re.match(r"^%s-[0-9a-f]{10}$" % kind, f["fingerprint"]), f
    return f


# --- 1: the fingerprint ---------------------------------------------------------------


def test_pli_inversion_parts_name_the_bug(builds):
    """The #3510 re-enactment: its parts are the cycle's two lock classes,
    the functions that took them and those that wait, as the fixture's
    source has them; nothing of this run (addresses, LWPs, ids, lines)."""
    data, truth = builds.report("pli_inversion")
    f = only_finding(data, "cycle")
    assert f["where"] == "deadlock #1"
    handler_takes = function_at(SITES["handler_streams"])
    admin_takes = function_at(SITES["admin_handle"])
    relay_waits = function_at(SITES["relay_rtcp_handle"])
    query_waits = function_at(SITES["query_streams"])
    assert f["parts"] == sorted([
        "hold janus_videoroom_publisher.streams_mutex in %s" % handler_takes,
        "hold janus_ice_handle.mutex in %s" % admin_takes,
        "wait janus_ice_handle.mutex in %s" % relay_waits,
        "wait janus_videoroom_publisher.streams_mutex in %s" % query_waits,
    ]), f
    text = " ".join(f["parts"])
    for lwp in [l for ls in truth.threads.values() for l in ls]:
        assert str(lwp) not in text
    for addr in truth.locks.values():
        assert ("%x" % addr) not in text
    assert not re.search(r":\d+", text), text       # no line numbers
    # the ids of the report are only in "locks", not in what is hashed
    assert sorted(f["locks"]) == sorted(set(f["locks"])) and len(f["locks"]) == 2


@pytest.mark.parametrize("change", [
    dict(variant="pthread"),            # --enable-pthread-mutex: exact owners instead
    dict(opt="O0"),                     # another build of the same source
    dict(mode="live"),
    dict(workers=1),                    # fewer threads piled up behind it
    dict(workers=25),                   # more
])
def test_same_bug_same_fingerprint(builds, change):
    base, _ = builds.report("pli_inversion")
    other, truth = builds.report("pli_inversion", **change)
    if "workers" in change:
        assert len(truth.lwps("worker")) == change["workers"]
    assert only_finding(other, "cycle")["fingerprint"] == \
        only_finding(base, "cycle")["fingerprint"], (change, other["findings"])


def test_stall_same_fingerprint_live_and_core(builds):
    a, _ = builds.report("usleep_holder")
    b, _ = builds.report("usleep_holder", mode="live", variant="pthread")
    assert only_finding(a, "stall")["fingerprint"] == only_finding(b, "stall")["fingerprint"]
    f = only_finding(a, "stall")
    # what the holder itself is blocked in is part of it
    assert any(p.startswith("block sleep in ") for p in f["parts"]), f


def test_different_bugs_different_fingerprints(builds):
    """Every scenario is a different bug: one finding each, of its kind, and
    no two fingerprints alike."""
    seen = {}
    for name, kind in sorted(SCENARIOS.items()):
        data, _ = builds.report(name)
        f = only_finding(data, kind)
        assert f["fingerprint"] not in seen, (name, seen)
        seen[f["fingerprint"]] = name
    assert len(seen) == len(SCENARIOS)


def test_leak_names_the_leaking_function(builds):
    """A leak's part names the function whose exit leaks the lock (the source
    check finds it), not where the victims wait."""
    data, _ = builds.report("leaked_rooms")
    f = only_finding(data, "leak")
    leaker = function_at(SITES["join_rooms_leak"])
    assert f["parts"] == ["leak janus_scenarios.c: rooms_mutex in %s" % leaker], f


def test_text_report_shows_fingerprint(builds):
    data, _ = builds.report("pli_inversion")
    text, _ = builds.report("pli_inversion", fmt="text")
    fp = only_finding(data, "cycle")["fingerprint"]
    head = text.split("\n\n")[0]
    assert "Fingerprint: %s (deadlock #1)" % fp in head, text
    # janus-locks says it under its first line too
    locks, _ = builds.report("pli_inversion", fmt="locks")
    assert locks.split("\n\n")[0].splitlines()[-1] == "Fingerprint: %s (deadlock #1)" % fp, locks


def test_no_finding_when_nothing_hangs(builds, tmp_path):
    """A healthy program: no finding, no fingerprint line, no known bug."""
    src = tmp_path / "idle.c"
    src.write_text("#include <unistd.h>\n#include <stdio.h>\n"
                   "int main(void){puts(\"ready\");fflush(stdout);for(;;)pause();}\n")
    exe = gdbrun.compile_c(str(src), str(tmp_path / "idle"))
    sc = gdbrun.Scenario(exe, [])
    try:
        res = gdbrun.gdb(["janus-waitgraph --format json", "janus-waitgraph"], pid=sc.pid)
    finally:
        sc.kill()
    data = gdbrun.extract_json(res.stdout)
    assert data["findings"] == []
    assert "Fingerprint" not in res.stdout and "janus-gateway #" not in res.stdout


# --- 2: the catalogue ----------------------------------------------------------------


PLUGINS_SRC = os.path.join(gdbrun.FIXTURES, "janus_plugins.c")


def entry(ref, kind):
    """The one catalogue entry of janus-gateway REF of KIND."""
    from janus_gdb.janus import knownhangs
    entries, problems = knownhangs.load()
    assert not problems, problems
    found = [e for e in entries if e["ref"] == ref and e["kind"] == kind]
    assert len(found) == 1, (ref, found)
    return found[0]


# fixture scenario -> (its source, the janus-gateway bug it re-enacts, finding kind)
MODELLED = {
    "pli_inversion": (SRC, "#3510", "cycle"),
    "leaked_lock": (SRC, "PR #3513", "leak"),         # 1.1.x-1.3.0's "Invalid msid" return
    "audiobridge_hangup": (PLUGINS_SRC, "#3570", "stall"),
}


@pytest.mark.parametrize("name", sorted(MODELLED))
def test_modelled_fixture_is_its_bug(builds, name):
    """Each scenario that re-enacts a catalogued bug is that bug ("This is",
    exact) when the fixture says it is a Janus release the bug affects, and
    only "Similar to" on the release that fixed it or with no version."""
    src, ref, kind = MODELLED[name]
    e = entry(ref, kind)
    inside = e["affects"]["to"]
    data, truth = builds.report(name, src=src, version=inside)
    assert data["target"]["janus_version"]["text"] == inside, data["target"]
    f = only_finding(data, kind)
    known = f["known"]
    assert known is not None and known["id"] == e["id"], f
    assert known["strength"] == "exact", known
    assert known["same_bug"] is True and known["version_in_range"] is True, known
    assert known["sentence"] == "This is janus-gateway %s (%s; affects %s%s, fixed in %s): %s" % (
        ref, e["title"], "%s to " % e["affects"]["from"] if e["affects"]["from"] != inside
        else "", inside, e["fixed_in"], e["advice"]), known
    text, _ = builds.report(name, src=src, version=inside, fmt="text")
    assert text.splitlines()[1] == known["sentence"], text
    assert text.splitlines()[2].startswith("  [match %s: exact: " % f["fingerprint"]), text
    # the release with the fix: the same shape, not that bug
    fixed, _ = builds.report(name, src=src, version=e["fixed_in"])
    k = only_finding(fixed, kind)["known"]
    assert k["id"] == e["id"] and k["same_bug"] is False and k["version_in_range"] is False, k
    assert k["sentence"].startswith("Similar to janus-gateway %s" % ref), k
    assert "Janus %s is not one of the affected releases: not that bug" % e["fixed_in"] \
        in k["sentence"], k
    # no version at all: cannot be said to be it
    unknown, _ = builds.report(name, src=src)
    assert unknown["target"]["janus_version"] is None, unknown["target"]
    k = only_finding(unknown, kind)["known"]
    assert k["version_in_range"] is None and not k["same_bug"], k
    assert "the Janus version is unknown" in k["sentence"], k
    # the version is not part of the fingerprint
    assert len(set(only_finding(d, kind)["fingerprint"] for d in (data, fixed, unknown))) == 1


def test_core_with_another_executable_has_no_version(builds, tmp_path):
    """A core of a 1.3.0 look-alike opened with another program, itself a
    "Janus 1.4.1" (an upgraded binary next to an old core): the report warns,
    and takes no version from that file or through its symbols, so nothing
    can be "This is" or "not that bug" on the wrong release."""
    # a run of its own (3 workers): its core is the last one made
    builds.report("pli_inversion", version="1.3.0", workers=3)
    core = builds.cores[-1]
    src = tmp_path / "janus141.c"
    src.write_text('const char *janus_version_string = "1.4.1";\nint janus_version = 1401;\n'
                   'int main(void) { return janus_version_string[0] == 0; }\n')
    other = gdbrun.compile_c(str(src), str(tmp_path / "janus"))
    res = gdbrun.gdb(["janus-waitgraph --format json"], exe=other, core=core)
    assert "Traceback" not in res.stdout + res.stderr
    data = gdbrun.extract_json(res.stdout)
    assert data["warnings"] and "not the program the core was made from" in \
        data["warnings"][0], data["warnings"]
    assert data["target"]["janus_version"] is None, data["target"]
    assert not any(f["known"] and f["known"]["same_bug"] for f in data["findings"]), \
        data["findings"]


@pytest.mark.parametrize("name", ["rooms_pileup", "self_deadlock", "leaked_rooms",
                                  "join_holding", "usleep_holder", "mountpoint_held"])
def test_uncatalogued_hangs_match_nothing(builds, name):
    """Scenarios of hangs the catalogue has no entry for (their real causes
    could not be tied to a fix: docs/known-hangs.md) match nothing, whatever
    the version: no "This is", no "Similar to"."""
    src = PLUGINS_SRC if name == "mountpoint_held" else SRC
    data, _ = builds.report(name, src=src, version="1.3.0")
    assert data["findings"], data["verdict"]
    assert all(f["known"] is None for f in data["findings"]), data["findings"]
    text, _ = builds.report(name, src=src, version="1.3.0", fmt="text")
    assert "janus-gateway" not in text and "Similar to" not in text, text
