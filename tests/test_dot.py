"""janus-waitgraph --format dot: real gdb on hung fixtures, the DOT through `dot -Tsvg`.

The expected picture is derived from the JSON report of the same gdb session
(its cycles, locks, waits and groups) and from the scenario's own ground
truth, never from fixed numbers: red exactly on the cycles' threads, locks
and edges, one node per group with its count, every wait and hold edge,
target strings escaped.
"""

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import gdbrun

sys.path.insert(0, gdbrun.ROOT)

from janus_gdb.analysis import analyze  # noqa: E402
from janus_gdb.report import dot as render_dot  # noqa: E402
from janus_gdb.model import FrameInfo, Snapshot  # noqa: E402
from test_logic import FakeMemory, mutex  # noqa: E402  (the shared fakes)

SVG = "{http://www.w3.org/2000/svg}"
MODES = ["live", "core"]
COMMANDS = ["janus-waitgraph --format json", "janus-waitgraph --format dot"]

pytestmark = pytest.mark.skipif(not gdbrun.have("dot"),
                                reason="graphviz (dot) is not installed (scripts/install-prereqs)")


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def split_output(stdout):
    """(JSON dict, DOT text) from one gdb run of COMMANDS (JSON first)."""
    lines = stdout.splitlines()
    starts = [i for i, l in enumerate(lines) if l.startswith("digraph ")]
    assert len(starts) == 1, stdout
    d = starts[0]
    end = d + lines[d:].index("}")
    data = gdbrun.extract_json("\n".join(lines[:d]))
    return data, "\n".join(lines[d:end + 1]) + "\n"


def to_svg(dot_text):
    res = subprocess.run(["dot", "-Tsvg"], input=dot_text.encode("utf-8"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert res.returncode == 0, res.stderr.decode("utf-8", "replace") + dot_text
    assert b"syntax error" not in res.stderr, res.stderr
    return ET.fromstring(res.stdout)


class Picture(object):
    """Nodes and edges of an SVG written by graphviz, by the ids render_dot gives."""

    def __init__(self, root):
        self.root = root
        self.nodes = {}
        self.edges = {}
        for g in root.iter(SVG + "g"):
            cls = g.get("class")
            if cls == "node":
                self.nodes[g.get("id")] = g
            elif cls == "edge":
                self.edges[g.get("id")] = g

    @staticmethod
    def text(g):
        return "\n".join(t.text or "" for t in g.iter(SVG + "text"))

    @staticmethod
    def stroke(g):
        """Outline colour of a node's shape or an edge's line."""
        for tag in ("path", "ellipse", "polygon"):
            el = g.find(SVG + tag)
            if el is not None:
                return el.get("stroke")
        return None

    def all_text(self):
        return "\n".join(t.text or "" for t in self.root.iter(SVG + "text"))


def no_raw_controls(text):
    bad = [c for c in text if c != "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0)]
    assert not bad, bad


def expected_red(data):
    """(edge ids, node ids) the cycles of the JSON report make red."""
    edges, nodes = set(), set()
    for cyc in data["cycles"]:
        for e in cyc["edges"]:
            src, dst = "T%d" % e["from"], "T%d" % e["to"]
            nodes.update((src, dst))
            if e["kind"] == "lock":
                nodes.add(e["lock"])
                edges.add("wait-%s-%s" % (src, e["lock"]))
                edges.add("hold-%s-%s" % (e["lock"], dst))
            else:
                edges.add("join-%s-%s" % (src, dst))
    return edges, nodes


def pinned_threads(data):
    """Threads render_dot must draw on their own: cycles, owners, candidates, join targets."""
    by_lwp = dict((t["lwp"], t["num"]) for t in data["threads"])
    nums = set()
    for c in data["cycles"]:
        nums.update(c["threads"])
    for l in data["locks"]:
        if l["owner"]["thread"] is not None:
            nums.add(l["owner"]["thread"])
        nums.update(l["candidates"])
    for t in data["threads"]:
        w = t["wait"]
        if w and w["kind"] == "join" and w["target_lwp"] in by_lwp:
            nums.add(by_lwp[w["target_lwp"]])
    return nums


def check_picture(data, dot_text):
    """Everything the JSON report says must be in the picture, red exactly on cycles.

    Returns (Picture, {group node id: count}).
    """
    no_raw_controls(dot_text)
    assert dot_text.startswith('digraph "janus-waitgraph" {')
    pic = Picture(to_svg(dot_text))
    assert data["verdict"] in pic.all_text()
    red_edges, red_nodes = expected_red(data)
    # red: exactly the cycles
    for eid in red_edges:
        assert eid in pic.edges, (eid, sorted(pic.edges))
    for nid in red_nodes:
        assert nid in pic.nodes, (nid, sorted(pic.nodes))
    for eid, g in pic.edges.items():
        assert (pic.stroke(g) == "red") == (eid in red_edges), (eid, pic.stroke(g))
    for nid, g in pic.nodes.items():
        assert (pic.stroke(g) == "red") == (nid in red_nodes), (nid, pic.stroke(g))
    # thread nodes: T-number, LWP, role
    threads = dict((t["num"], t) for t in data["threads"])
    for nid in red_nodes:
        if nid.startswith("T"):
            t = threads[int(nid[1:])]
            text = pic.text(pic.nodes[nid])
            assert "T%d (LWP %d)" % (t["num"], t["lwp"]) in text.splitlines(), text
            if t["role"]:
                assert t["role"] in text, text
    # groups: one node with the count, members not drawn on their own
    pinned = pinned_threads(data)
    groups = {}
    for g in data["groups"]:
        if g["count"] < render_dot.GROUP_MIN or pinned & set(g["threads"]):
            continue
        gid = "G%d" % g["threads"][0]
        assert gid in pic.nodes, (gid, sorted(pic.nodes))
        text = pic.text(pic.nodes[gid])
        assert "{:,} threads".format(g["count"]) in text.splitlines(), text
        for n in g["threads"]:
            assert "T%d" % n not in pic.nodes
        if g["waits_for"]:
            assert "wait-%s-%s" % (gid, g["waits_for"]) in pic.edges
        groups[gid] = g["count"]
    assert sorted(n for n in pic.nodes if n.startswith("G")) == sorted(groups)
    # every lock, its owner edge with the evidence, every wait edge
    for l in data["locks"]:
        assert l["id"] in pic.nodes
        assert pic.text(pic.nodes[l["id"]]).splitlines()[0] == l["id"]
        owner = l["owner"]
        if owner["thread"] is not None and l["state"] != "free":
            eid = "hold-%s-T%d" % (l["id"], owner["thread"])
            assert eid in pic.edges, (eid, sorted(pic.edges))
            assert "(%s" % owner["evidence"] in pic.text(pic.edges[eid])
    lock_id = dict((l["address"], l["id"]) for l in data["locks"])
    member = {}
    for gid in groups:
        for g in data["groups"]:
            if "G%d" % g["threads"][0] == gid:
                member.update((n, gid) for n in g["threads"])
    for t in data["threads"]:
        w = t["wait"]
        if w and w["lock"] in lock_id:
            src = member.get(t["num"], "T%d" % t["num"])
            assert "wait-%s-%s" % (src, lock_id[w["lock"]]) in pic.edges, (src, w)
    return pic, groups


def run_both(exe, pid=None, core=None):
    res = gdbrun.gdb(COMMANDS, pid=pid, exe=exe if core else None, core=core)
    assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
    return split_output(res.stdout)


# ---------------------------------------------------------------------------
# scenarios.c: pthread and GMutex cycles, a pile-up
# ---------------------------------------------------------------------------

def run_scenario(scenarios, name, mode):
    sc = scenarios.get(name)
    exe = scenarios.binaries.exe("debug")
    if mode == "live":
        data, dot_text = run_both(exe, pid=sc.pid)
    else:
        data, dot_text = run_both(exe, core=scenarios.core(name))
    return data, dot_text, sc.truth


def lwp_nums(data, lwps):
    return set(t["num"] for t in data["threads"] if t["lwp"] in lwps)


@pytest.mark.parametrize("mode", MODES)
def test_pthread_cycle(scenarios, mode):
    data, dot_text, t = run_scenario(scenarios, "pthread_cycle", mode)
    assert data["deadlocks"] == 1
    pic, groups = check_picture(data, dot_text)
    # the cycle's two threads and two locks are red; main's join of cycle_a is not
    red = [g for g in pic.nodes.values() if pic.stroke(g) == "red"]
    assert len(red) == 4
    main = lwp_nums(data, t.lwps("main")).pop()
    a = lwp_nums(data, t.lwps("cycle_a")).pop()
    assert pic.stroke(pic.edges["join-T%d-T%d" % (main, a)]) != "red"
    # the waiters queued behind the cycle are one node with their count
    waiters = lwp_nums(data, t.lwps("waiter"))
    assert "G%d" % min(waiters) in groups and groups["G%d" % min(waiters)] == len(waiters)
    for l in data["locks"]:
        assert l["owner"]["evidence"] == "exact"
        assert "(exact)" in pic.text(pic.edges["hold-%s-T%d" % (l["id"], l["owner"]["thread"])])


@pytest.mark.parametrize("mode", MODES)
def test_gmutex_cycle_inferred_owners(scenarios, mode):
    data, dot_text, t = run_scenario(scenarios, "gmutex_cycle", mode)
    assert data["deadlocks"] == 1
    pic, _groups = check_picture(data, dot_text)
    # inferred holds are dashed and say so
    for cyc in data["cycles"]:
        for e in cyc["edges"]:
            if e["kind"] != "lock":
                continue
            g = pic.edges["hold-%s-T%d" % (e["lock"], e["to"])]
            assert "inferred" in pic.text(g)
            assert g.find(SVG + "path").get("stroke-dasharray"), "inferred hold not dashed"


def test_gmutex_pileup_groups(scenarios):
    data, dot_text, t = run_scenario(scenarios, "gmutex_pileup", "live")
    assert data["deadlocks"] == 0
    pic, groups = check_picture(data, dot_text)
    waiters = lwp_nums(data, t.lwps("waiter"))
    assert len(waiters) >= render_dot.GROUP_MIN
    assert groups == {"G%d" % min(waiters): len(waiters)}
    assert not [g for g in pic.edges.values() if pic.stroke(g) == "red"]


# ---------------------------------------------------------------------------
# janus_scenarios.c: #2016 pile-up with a cycle and a hostile display name
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant,mode", [("gmutex", "live"), ("pthread", "live"),
                                          ("gmutex", "core")])
def test_rooms_pileup_hostile_name(janus, variant, mode):
    sc = janus.get("rooms_pileup", variant)
    exe = janus.exes[variant]
    if mode == "live":
        data, dot_text = run_both(exe, pid=sc.pid)
    else:
        data, dot_text = run_both(exe, core=janus.core("rooms_pileup", variant))
    t = sc.truth
    pic, groups = check_picture(data, dot_text)
    assert data["deadlocks"] == 1
    cycle = data["cycles"][0]["threads"]
    assert set(x["lwp"] for x in data["threads"] if x["num"] in cycle) == {
        t.lwp("kicker"), t.lwp("hangup")}
    # the 40 workers: one node "40 threads", waiting for rooms_mutex
    workers = lwp_nums(data, t.lwps("worker"))
    gid = "G%d" % min(workers)
    assert groups.get(gid) == len(workers)
    rooms = [l["id"] for l in data["locks"] if l["address"] == t.lock("rooms_mutex")][0]
    assert "wait-%s-%s" % (gid, rooms) in pic.edges
    assert "janus_videoroom_process_synchronous_request" in pic.text(pic.nodes[gid])
    # Janus names on lock nodes; the hostile display name escaped, not raw
    part = [l for l in data["locks"] if l["address"] == t.lock("participant_mutex")][0]
    assert "\x1b" in part["name"]
    text = pic.text(pic.nodes[part["id"]])
    assert "mallory" in text and "9999" in text
    assert "\\x1b[31mmallory\\x07" in text, text
    assert "\x1b" not in dot_text and "\x07" not in dot_text
    svg_text = pic.all_text()
    assert "\x1b" not in svg_text and "\x07" not in svg_text
    # thread roles from Janus's entry functions
    hangup = lwp_nums(data, {t.lwp("hangup")}).pop()
    role = [x["role"] for x in data["threads"] if x["num"] == hangup][0]
    assert role and role in pic.text(pic.nodes["T%d" % hangup])


# ---------------------------------------------------------------------------
# Made-up reports: strings no fixture can hold
# ---------------------------------------------------------------------------

ARCH = "i386:x86-64"
FUTEX = 202
HOSTILE = ['quote " and \\ back\\slash \\N \\G \\l',
           'new\nline\r\x00nul \x1b]0;title\x07 \x9b31m',
           '"]; injected [label="pwned"]; "x" -> "y',
           '&amp; &foo; &#38; <svg onload=x> ]]> -- }',
           'bidi \u202eevil\u202c \u2028 \ud800 \ufffe \U0001f600 caf\xe9',
           "long " + "x" * 5000]


def fake_report(names):
    """A 2-cycle of pthread mutexes, 5 waiters behind it, every string hostile."""
    mem = FakeMemory()
    A, B = 0x5000, 0x6000
    for addr, owner in ((A, 101), (B, 102)):
        mutex(mem, addr, 2, owner)

    def frames(app):
        return [FrameInfo(0, 0x1000, "__lll_lock_wait", lib="libc.so.6", system=True),
                FrameInfo(1, 0x1100, "___pthread_mutex_lock", lib="libc.so.6", system=True),
                FrameInfo(2, 0x2000, app, "app.c", 10),
                FrameInfo(3, 0x1200, "start_thread", lib="libc.so.6", system=True)]

    snaps = [Snapshot(1, 101, names[0], {"sysno": FUTEX, "args": (B, 128, 2)}, frames(names[1])),
             Snapshot(2, 102, names[2], {"sysno": FUTEX, "args": (A, 128, 2)}, frames(names[3]))]
    for i in range(5):
        snaps.append(Snapshot(3 + i, 103 + i, names[4], {"sysno": FUTEX, "args": (A, 128, 2)},
                              frames(names[5])))

    def namer(locks, threads):
        for i, lock in enumerate(sorted(locks, key=lambda l: l.addr)):
            lock.name_text = names[i]

    return analyze.build_report(snaps, ARCH, mem, {"kind": "core", "pid": 1}, [], (), namer)


@pytest.mark.parametrize("shift", range(len(HOSTILE)))
def test_hostile_strings_stay_inside_their_labels(shift):
    names = HOSTILE[shift:] + HOSTILE[:shift]
    rep = fake_report(names)
    dot_text = render_dot.render(rep, "janus-waitgraph")
    assert dot_text == render_dot.render(fake_report(names), "janus-waitgraph")  # deterministic
    no_raw_controls(dot_text)
    dot_text.encode("utf-8")  # no lone surrogates
    pic = Picture(to_svg(dot_text))
    # exactly the nodes and edges render_dot means: nothing injected
    assert sorted(pic.nodes) == ["G3", "M1", "M2", "T1", "T2"]
    assert sorted(pic.edges) == ["hold-M1-T2", "hold-M2-T1", "wait-G3-M2",
                                 "wait-T1-M1", "wait-T2-M2"]
    assert [pic.stroke(pic.edges[e]) for e in sorted(pic.edges)] == [
        "red", "red", "black", "red", "red"]
    assert "5 threads" in pic.text(pic.nodes["G3"]).splitlines()
    text = pic.all_text()
    for bad in ("\x1b", "\x07", "\x00", "\r", "\u202e", "\u2028", "\x9b"):
        assert bad not in text
    assert "pwned" not in [pic.text(g) for g in pic.nodes.values()]
    # shown escaped, as the text report shows them
    if any("\x1b]0;title" in n for n in names[:2]):
        assert "\\x1b]0;title\\x07" in text
    shown = "".join(names[:2])  # lock names, cut at render_dot.NAME_LEN
    if HOSTILE[3] in shown:
        assert "&amp; &foo; &#38; <svg onload=x> ]]> -- }" in text
    if HOSTILE[0] in shown:
        assert 'quote " and \\\\ back\\\\slash \\\\N' in text
    assert "\\u202eevil" in text or "\u202eevil" not in shown
    # long strings are cut
    assert max(len(line) for line in text.splitlines()) < 200
