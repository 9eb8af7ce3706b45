"""The table of Janus's real lock bugs (tests/data/janus_lock_history.json)
and the matching logic of bench/history.py.

The table's consistency and matches() need nothing but this checkout.  The
last tests check the table against the janus-gateway git history itself
(every commit exists, every pre-fix line really is a lock call or the
leaking exit, every fix touches the file); they skip when no janus-gateway
repository is at $JANUS_GATEWAY_REPO or the developer mirror (CI has none).
"""

import collections
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("history", os.path.join(ROOT, "bench", "history.py"))
history = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(history)

TABLE = history.load_table()
BY_ID = dict((e["id"], e) for e in TABLE)
SHA = re.compile(r"^[0-9a-f]{40}$")
COMMON = ("id", "kind", "component", "pr", "issue", "fix", "parent", "version", "files",
          "functions", "locks", "description")


def positive(n):
    return isinstance(n, int) and not isinstance(n, bool) and n > 0


# --- the table on its own --------------------------------------------------------

def test_entries_have_the_required_keys():
    ids = [e["id"] for e in TABLE]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for e in TABLE:
        missing = [k for k in COMMON if k not in e]
        assert not missing, (e.get("id"), missing)
        assert e["kind"] in history.KINDS, e["id"]
        assert e["id"].startswith("leak-" if e["kind"] == "missing-unlock" else "inv-"), e["id"]
        assert SHA.match(e["fix"]) and SHA.match(e["parent"]) and e["fix"] != e["parent"], e["id"]
        assert re.match(r"^v\d+\.\d+\.\d+(-\d+-g[0-9a-f]+)?$", e["version"]), e["id"]
        assert e["version"].endswith("g" + e["parent"][:8]) or "-" not in e["version"], e["id"]
        assert e["pr"] is None or positive(e["pr"]), e["id"]
        assert e["issue"] is None or positive(e["issue"]), e["id"]
        assert e["files"] and all(isinstance(f, str) and f.endswith(".c") for f in e["files"])
        assert e["functions"] and all(re.match(r"^\w+$", f) for f in e["functions"]), e["id"]
        assert 20 < len(e["description"]) < 400, e["id"]
        assert e["merged_as"] is None or (SHA.match(e["merged_as"]) and e["merged_as"] != e["fix"])
        assert e["fixed_in"] is None or re.match(r"^v\d+\.\d+\.\d+$", e["fixed_in"]), e["id"]
        assert e["note"] is None or 20 < len(e["note"]) < 400, e["id"]


def test_lines_are_positive_ints_and_name_the_entry_files():
    for e in TABLE:
        if e["kind"] == "missing-unlock":
            assert len(e["locks"]) == 1 and e["lock"]["class"] == e["locks"][0], e["id"]
            assert e["lock"]["file"] == e["exit"]["file"] and e["lock"]["file"] in e["files"]
            assert e["lock"]["function"] in e["functions"]
            assert e["lock"]["expr"].startswith("&"), e["id"]
            assert e["exit"]["how"] in ("return", "goto", "end"), e["id"]
            lines = [e["lock"]["line"], e["exit"]["line"]] + e["exit"]["also"]
            assert all(positive(n) for n in lines), e["id"]
            assert e["lock"]["line"] < min(lines[1:]), e["id"]      # locked before every exit
        else:
            assert len(e["locks"]) == 2 and len(set(e["locks"])) == 2, e["id"]
            assert len(e["edges"]) == 2, e["id"]
            a, b = e["edges"]
            assert (a["held"], a["taken"]) == (b["taken"], b["held"]), e["id"]  # opposite orders
            assert set([a["held"], a["taken"]]) == set(e["locks"]), e["id"]
            for edge in e["edges"]:
                assert positive(edge["line"]) and positive(edge["held_line"]), e["id"]
                assert edge["file"] in e["files"] and edge["held_file"] in e["files"]
                assert edge["chain"], e["id"]
                assert edge["chain"][0]["function"] == edge["held_function"], e["id"]
                assert edge["chain"][-1]["function"] == edge["function"], e["id"]
                assert edge["chain"][-1]["line"] == edge["line"], e["id"]
                for c in edge["chain"]:
                    assert positive(c["line"]) and c["file"] in e["files"], e["id"]
                    assert c["function"] in e["functions"], e["id"]
                if edge["held_file"] == edge["chain"][0]["file"]:
                    assert edge["held_line"] <= edge["chain"][0]["line"], e["id"]


def test_enough_bugs_across_the_core_and_several_plugins():
    kinds = collections.Counter(e["kind"] for e in TABLE)
    assert kinds["missing-unlock"] >= 10 and kinds["inversion"] >= 5, kinds
    leak_parts = set(e["component"] for e in TABLE if e["kind"] == "missing-unlock")
    assert "core" in leak_parts and len(leak_parts - set(["core"])) >= 4, leak_parts
    inv_parts = set(p for e in TABLE if e["kind"] == "inversion" for p in e["component"].split("+"))
    assert len(inv_parts) >= 3, inv_parts
    assert len(set(e["version"].split("-")[0].rsplit(".", 1)[0] for e in TABLE)) >= 5  # versions


def test_lock_classes_are_named_like_the_analysis():
    """'file.c: global' or 'struct_type.field'; aliases only for the
    entry's own classes, with the same field."""
    for e in TABLE:
        for cls in e["locks"]:
            assert re.match(r"^([\w-]+\.c: \w+|\w+\.\w+)$", cls), (e["id"], cls)
            assert history.norm_class(cls) == cls
        for cls, aliases in e.get("aliases", {}).items():
            assert cls in e["locks"], (e["id"], cls)
            assert all(history.class_field(a) == history.class_field(cls) for a in aliases)


# --- matches() on hand-written findings ---------------------------------------------

def leak_finding(entry, **kw):
    f = {"kind": "missing-unlock", "file": entry["lock"]["file"],
         "function": entry["lock"]["function"],
         "lock": {"class": entry["lock"]["class"], "expr": entry["lock"]["expr"],
                  "line": entry["lock"]["line"]},
         "exit": {"line": entry["exit"]["line"], "how": entry["exit"]["how"]}}
    for k, v in kw.items():
        if k in ("class", "lock_line"):
            f["lock"]["class" if k == "class" else "line"] = v
        elif k == "exit_line":
            f["exit"]["line"] = v
        else:
            f[k] = v
    return f


def test_matches_a_leak_by_its_exit_line():
    e = BY_ID["leak-3513-msid"]
    assert history.matches(e, leak_finding(e))
    for d in (-2, -1, 1, 2):                                    # tolerance
        assert history.matches(e, leak_finding(e, exit_line=e["exit"]["line"] + d, lock_line=1))
    assert not history.matches(e, leak_finding(e, exit_line=e["exit"]["line"] + 3, lock_line=1))
    # basename is enough: the analysis may print the path it was given
    assert history.matches(e, leak_finding(e, file="/tmp/x/src/janus.c"))
    assert not history.matches(e, leak_finding(e, file="src/ice.c"))
    assert not history.matches(e, dict(leak_finding(e), kind="inversion"))


def test_matches_a_leak_by_its_lock_line_and_function():
    e = BY_ID["leak-3468-rtpfwd-udp"]
    far = e["exit"]["line"] + 40
    assert history.matches(e, leak_finding(e, exit_line=far))
    assert not history.matches(e, leak_finding(e, exit_line=far, function="other"))
    assert not history.matches(e, leak_finding(e, exit_line=far, lock_line=e["lock"]["line"] + 1))


def test_matches_a_leak_on_one_of_its_other_exits():
    e = BY_ID["leak-2780-codec"]
    assert history.matches(e, leak_finding(e, exit_line=e["exit"]["also"][0] + 1, lock_line=1))


def test_a_leak_of_another_lock_at_the_same_exit_is_not_the_entry():
    e = BY_ID["leak-3468-rtpfwd-udp"]
    assert not history.matches(e, leak_finding(e, **{"class": "janus_videoroom.mutex"}))
    assert not history.matches(e, leak_finding(e, **{"class": "janus_videoroom.c: rooms_mutex"}))
    # the same field under another name for the type, or an unknown class, still counts
    assert history.matches(e, leak_finding(e, **{"class": "struct janus_videoroom_publisher.streams_mutex"}))
    assert history.matches(e, leak_finding(e, **{"class": "publisher_t.streams_mutex"}))
    assert history.matches(e, leak_finding(e, **{"class": None}))
    assert history.matches(e, leak_finding(e, **{"class": "?"}))


def test_a_struct_class_under_its_tag_name():
    e = BY_ID["leak-sip-subscribe-helper"]
    assert history._same_class(e, "ssip_t.smutex", "ssip_s.smutex")
    assert history._same_class(e, "ssip_t.smutex", "struct ssip_s.smutex")
    assert not history._same_class(e, "ssip_t.smutex", "janus_sip_session.smutex")
    assert history.matches(e, leak_finding(e, **{"class": "ssip_s.smutex"}))


def test_global_classes_compare_by_file_basename():
    e = BY_ID["leak-2280-changeroom"]
    f = leak_finding(e, **{"class": "/tmp/x/plugins/janus_audiobridge.c: rooms_mutex"})
    assert history.matches(e, f)


def inv_finding(entry, classes=None, edges=None):
    a, b = entry["edges"]
    if edges is None:
        edges = [{"held": x["held"], "taken": x["taken"], "file": x["file"], "line": x["line"],
                  "function": x["function"], "held_line": x["held_line"],
                  "chain": [c["function"] for c in x["chain"]]} for x in (a, b)]
    return {"kind": "inversion", "classes": list(entry["locks"]) if classes is None else classes,
            "edges": edges}


def test_matches_an_inversion_by_its_classes():
    e = BY_ID["inv-2115-streaming-session-mp"]
    assert history.matches(e, inv_finding(e))
    assert history.matches(e, inv_finding(e, classes=list(reversed(e["locks"]))))
    assert history.matches(e, inv_finding(e, edges=[]))          # classes alone are enough
    assert not history.matches(e, inv_finding(e, classes=[e["locks"][0], "janus_streaming.c: mountpoints_mutex"]))
    assert not history.matches(e, inv_finding(e, classes=e["locks"] + ["x.mutex"]))
    assert not history.matches(e, dict(inv_finding(e), kind="missing-unlock"))


def test_matches_an_inversion_with_an_unknown_class_by_its_edges():
    e = BY_ID["inv-3510-pli-handle-info"]
    f = inv_finding(e, classes=["?", e["locks"][1]])
    assert history.matches(e, f)
    # one edge at another place: not this bug
    f["edges"][1] = dict(f["edges"][1], line=f["edges"][1]["line"] + 50,
                         held_line=f["edges"][1]["held_line"] + 50)
    assert not history.matches(e, f)
    # only one of the two edges: not enough
    assert not history.matches(e, inv_finding(e, classes=["?", "?"], edges=inv_finding(e)["edges"][:1]))
    # no classes at all, edges given: the edges decide
    g = inv_finding(e, classes=[])
    for edge in g["edges"]:
        edge["held"] = edge["taken"] = None
    assert history.matches(e, g)


def test_strict_matching_needs_the_entry_sites():
    """At the fix a finding must be at the entry's own sites to count as the
    bug still there: a leak by its exit line, an inversion by both edges,
    each in the entry's direction."""
    e = BY_ID["leak-3468-rtpfwd-udp"]
    far = e["exit"]["line"] + 40
    assert history.matches(e, leak_finding(e, exit_line=far))
    assert not history.matches(e, leak_finding(e, exit_line=far), strict=True)
    assert history.matches(e, leak_finding(e, lock_line=1), strict=True)
    inv = BY_ID["inv-2115-streaming-session-mp"]
    assert history.matches(inv, inv_finding(inv), strict=True)
    # the same classes through other edges: the bug itself is gone
    other = inv_finding(inv)
    for edge in other["edges"]:
        edge["line"] += 300
        edge["held_line"] += 300
    assert history.matches(inv, other) and not history.matches(inv, other, strict=True)
    # one of the two edges left: gone
    one = inv_finding(inv)
    one["edges"] = one["edges"][1:]
    assert history.matches(inv, one) and not history.matches(inv, one, strict=True)
    # the fix swapped two adjacent lock lines: the edge at the same lines in
    # the other direction is not the entry's edge
    swapped = inv_finding(inv)
    a = swapped["edges"][0]
    a["held"], a["taken"] = a["taken"], a["held"]
    a["held_line"], a["line"] = a["line"] - 1, a["held_line"] - 1
    assert not history.matches(inv, swapped, strict=True)


def test_an_edge_matches_by_its_held_site_through_the_chain():
    """The held lock's function is the chain's first one when the edge
    crosses functions (the taken lock is in the last)."""
    e = BY_ID["inv-3510-pli-handle-info"]
    f = inv_finding(e, classes=["?", "?"])
    for got, want in zip(f["edges"], e["edges"]):
        got["line"] += 100                                       # taken site unknown
        got["function"] = "elsewhere"
        assert got["chain"][0] == want["held_function"]
    assert history.matches(e, f)
    f["edges"][0]["chain"] = ["other"] + f["edges"][0]["chain"][1:]
    assert not history.matches(e, f)


def test_aliases_of_a_class():
    e = dict(BY_ID["inv-3474-room-streams"], aliases={"janus_videoroom.mutex": ["room_t.mutex"]})
    assert history.matches(e, inv_finding(e, classes=["room_t.mutex", e["locks"][0]]))


# --- moving lines to the fix's numbering -----------------------------------------------

DIFF = """\
diff --git a/x.c b/x.c
@@ -10,0 +11,2 @@ f
+ins1
+ins2
@@ -20 +22 @@ g
-old
+new
@@ -30,3 +32,0 @@ h
-d1
-d2
-d3
"""


def test_map_line_through_a_diff():
    hunks = history.parse_hunks(DIFF)
    assert hunks == [(10, 0, 11, 2), (20, 1, 22, 1), (30, 3, 32, 0)]
    m = lambda n: history.map_line(hunks, n)                    # noqa: E731
    assert [m(1), m(10), m(11), m(19), m(20), m(21), m(29)] == [1, 10, 13, 21, 22, 23, 31]
    assert m(33) == 30 + 2 + 1 - 3 + 2 and m(100) == 99
    assert history.map_line([], 7) == 7


def test_shift_entry_moves_every_line():
    e = BY_ID["leak-2026-join"]
    hunks = [(e["lock"]["line"] + 1, 0, e["lock"]["line"] + 2, 3)]
    moved = history.shift_entry(e, lambda path: hunks)
    assert moved["lock"]["line"] == e["lock"]["line"]
    assert moved["exit"]["line"] == e["exit"]["line"] + 3
    assert moved["exit"]["also"] == [n + 3 for n in e["exit"]["also"]]
    assert BY_ID["leak-2026-join"]["exit"]["line"] == e["exit"]["line"]   # a copy
    inv = history.shift_entry(BY_ID["inv-3510-pli-handle-info"], lambda path: [(1, 0, 2, 1)])
    assert [x["line"] for x in inv["edges"]] == [x["line"] + 1 for x in BY_ID["inv-3510-pli-handle-info"]["edges"]]


def test_archive_paths_follow_the_tree_layout():
    assert history.archive_paths(["src/janus.c", "src/plugins/janus_sip.c"]) == ["src"]
    assert history.archive_paths(["plugins/janus_sip.c"]) == [":(glob)*.c", ":(glob)*.h", "plugins"]
    assert history.archive_paths(["sctp.c"]) == [":(glob)*.c", ":(glob)*.h"]


def test_the_script_finds_the_analysis_and_says_when_the_repository_is_missing(tmp_path):
    # the lockorder command answers the probe (it raises BenchError otherwise)
    history.check_analysis()
    res = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "history.py"),
                          "--repo", str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    # no repository there: said in one line, exit status 2, no traceback
    assert res.returncode == 2 and "janus-gateway git repository" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


# --- the table against Janus's real history (needs the repository) -----------------------

def _repo():
    try:
        return history.find_repo(None)
    except history.BenchError as exc:
        pytest.skip("no janus-gateway repository: %s" % exc)


@pytest.fixture(scope="module")
def repo():
    return _repo()


def show(repo, commit, path):
    return history.git(repo, "show", "%s:%s" % (commit, path)).splitlines()


def lock_call(text, expr=None):
    m = re.search(r"janus_mutex_lock(_nodebug)?\(\s*(&[^)]*)\)", text)
    return bool(m) and (expr is None or m.group(2).replace(" ", "") == expr.replace(" ", ""))


def test_commits_exist_and_the_parent_is_the_fix_parent(repo):
    for e in TABLE:
        parents = history.git(repo, "rev-list", "--parents", "-n", "1", e["fix"]).split()
        assert parents[0] == e["fix"] and parents[1] == e["parent"], e["id"]
        desc = history.git(repo, "describe", "--tags", e["parent"]).strip()
        assert desc == e["version"], (e["id"], desc)


def test_the_fix_touches_the_files(repo):
    for e in TABLE:
        changed = set(history.git(repo, "diff", "--name-only", e["parent"], e["fix"]).split())
        if e["kind"] == "missing-unlock":
            assert e["lock"]["file"] in changed, e["id"]
        else:
            assert changed & set(e["files"]), e["id"]
        if e["merged_as"]:
            merged = history.git(repo, "show", "--format=", "--name-only", e["merged_as"]).split()
            assert changed & set(merged), e["id"]
        carrier = e["merged_as"] or e["fix"]
        tags = [t for t in history.git(repo, "tag", "--contains", carrier).split()
                if re.match(r"^v\d+\.\d+\.\d+$", t)]
        first = min(tags, key=lambda t: tuple(int(x) for x in t[1:].split("."))) if tags else None
        assert first == e["fixed_in"], (e["id"], first)


def test_the_benchmark_extracts_every_entry(repo, monkeypatch, tmp_path):
    """bench/history.py's plumbing on the real history with a stand-in for the
    analysis: every entry's files are extracted at both commits and given to
    it; with no findings nothing is found and everything is gone."""
    seen = []

    def fake(paths, cwd=None):
        assert all(os.path.exists(p) for p in paths), paths
        seen.append(paths)
        return {"schema": "janus-gdb/lockorder/1", "findings": [], "unresolved": []}
    monkeypatch.setattr(history, "run_analysis", fake)
    cache = {}
    for e in TABLE:
        n = len(seen)
        r = history.evaluate(repo, e, str(tmp_path), "files", cache)
        assert (r["found"], r["sites"], r["gone"], r["elsewhere"]) == (False, False, True, False), e["id"]
        for paths in seen[n:]:
            names = [p[len(str(tmp_path)):] for p in paths]
            for f in e["files"]:
                assert any(name.endswith("/" + f) for name in names), (e["id"], f)
            assert any(name.endswith(".h") for name in names), e["id"]
    # one run per commit and file set (3468's fix is 3469's parent, ...)
    assert len(seen) == len(set((c, tuple(e["files"])) for e in TABLE for c in (e["parent"], e["fix"])))


def test_prefix_lines_are_the_lock_and_the_leaking_exit(repo):
    for e in TABLE:
        if e["kind"] != "missing-unlock":
            continue
        src = show(repo, e["parent"], e["lock"]["file"])
        assert lock_call(src[e["lock"]["line"] - 1], e["lock"]["expr"]), e["id"]
        for n in [e["exit"]["line"]] + e["exit"]["also"]:
            text = src[n - 1].strip()
            if e["exit"]["how"] == "end":
                assert text == "}", (e["id"], n, text)
            else:
                assert text.startswith(e["exit"]["how"]), (e["id"], n, text)
            # the function named holds both lines: no other function starts between them
            between = src[e["lock"]["line"]:n - 1]
            assert not any(re.match(r"^[a-z].*\)\s*\{\s*$", l) for l in between), (e["id"], n)
        # the unlock the fix added is for the same lock
        diff = history.git(repo, "diff", e["parent"], e["fix"], "--", e["lock"]["file"])
        field = e["lock"]["expr"].lstrip("&").split("->")[-1].split(".")[-1]
        assert re.search(r"^\+.*janus_mutex_unlock\(&[\w>.-]*\b%s\)" % re.escape(field),
                         diff, re.M), e["id"]


def test_prefix_lines_of_inversions_are_lock_calls_and_calls(repo):
    for e in TABLE:
        if e["kind"] != "inversion":
            continue
        files = dict((f, show(repo, e["parent"], f)) for f in e["files"])
        for edge in e["edges"]:
            assert lock_call(files[edge["held_file"]][edge["held_line"] - 1]), (e["id"], edge["held_line"])
            assert lock_call(files[edge["file"]][edge["line"] - 1]), (e["id"], edge["line"])
            field = edge["taken"].split(".")[-1].split(": ")[-1]
            assert field in files[edge["file"]][edge["line"] - 1], (e["id"], edge["line"])
            field = edge["held"].split(".")[-1].split(": ")[-1]
            assert field in files[edge["held_file"]][edge["held_line"] - 1], (e["id"], edge["held_line"])
            # each hop of the chain calls the next function (or the plugin/core callback that is it)
            chain = edge["chain"]
            for here, nxt in zip(chain, chain[1:]):
                text = files[here["file"]][here["line"] - 1]
                callee = nxt["function"]
                short = re.sub(r"^janus_(videoroom_|plugin_|ice_|\w+?_)", "", callee)
                assert callee + "(" in text or ("->" + short + "(") in text, (e["id"], here, text)


def test_mapped_exit_lines_are_the_same_statement_at_the_fix(repo):
    """map_line() moves each leak's exit to the same statement at the fix."""
    for e in TABLE:
        if e["kind"] != "missing-unlock":
            continue
        path = e["lock"]["file"]
        hunks = history.parse_hunks(history.git(repo, "diff", "-U0", e["parent"], e["fix"], "--", path))
        moved = history.shift_entry(e, lambda p: hunks)
        before = show(repo, e["parent"], path)
        after = show(repo, e["fix"], path)
        for old, new in zip([e["exit"]["line"]] + e["exit"]["also"],
                            [moved["exit"]["line"]] + moved["exit"]["also"]):
            assert before[old - 1] == after[new - 1], (e["id"], old, new)


def test_recall_counts_found_and_gone_and_an_entry_error_is_that_row_only(monkeypatch, capsys):
    """main() without the repository or the analysis: evaluate() stubbed."""
    ids = ["leak-3513-msid", "leak-3468-rtpfwd-udp", "inv-3474-room-streams", "inv-2115-streaming-session-mp"]
    results = {
        "leak-3513-msid": {"found": True, "sites": True, "gone": True, "elsewhere": False},
        "leak-3468-rtpfwd-udp": {"found": False, "sites": False, "gone": True, "elsewhere": False},
        "inv-3474-room-streams": {"found": True, "sites": True, "gone": False, "elsewhere": False},
    }

    def fake_evaluate(repo, entry, workdir, scope, cache):
        if entry["id"] not in results:
            raise history.BenchError("lockorder crashed")
        return dict(results[entry["id"]], detail="stub")
    monkeypatch.setattr(history, "find_repo", lambda arg: "/nonexistent")
    monkeypatch.setattr(history, "check_analysis", lambda: None)
    monkeypatch.setattr(history, "evaluate", fake_evaluate)
    assert history.main(["--only", ",".join(ids), "--release", "none"]) == 0
    out = capsys.readouterr().out
    assert "recall: 1/4 found at the parent and gone at the fix" in out
    assert "missing-unlock 1/2" in out and "inversion      0/2" in out
    rows = dict((l.split()[0], l.split()) for l in out.splitlines() if l.split() and l.split()[0] in ids)
    assert rows["inv-2115-streaming-session-mp"][-2] == "ERROR"
    assert "error: lockorder crashed" in out and "1 entry could not be run" in out
    assert rows["leak-3468-rtpfwd-udp"][5:8] == ["NO", "-", "yes"]


def test_the_analysis_finds_the_msid_leak_and_not_after_its_fix(repo, tmp_path):
    """End to end on the issue's headline bug (#3513): the lockorder command
    reports the leak at the parent, at its own exit line, and not at the fix.
    Needs the repository and the lockorder command (skips otherwise)."""
    try:
        history.check_analysis()
    except history.BenchError as exc:
        pytest.skip(str(exc))
    r = history.evaluate(repo, BY_ID["leak-3513-msid"], str(tmp_path), "files", {})
    assert (r["found"], r["sites"], r["gone"]) == (True, True, True), r["detail"]
