"""The known-bug catalogue janus_gdb/janus/known_hangs.json (issue 15).

Pure consistency checks of the data file (no gdb): the schema, unique ids,
kinds, lock classes named the way the analysis names them, functions given
for every lock the kind needs, versions that parse and are ordered (an entry
of "entries" names its affected releases; one of "unreleased", a bug that
lived only between releases, names none), no two entries of the same shape
with overlapping releases, and every entry of the history table
(tests/data/janus_lock_history.json) covered by a catalogue entry with the
same classes, functions and fix release, so that the two files cannot drift
apart.  One checker, problems(), finds all of it; the
broken copies below show that it rejects each kind of mistake.

The last tests check the catalogue against the janus-gateway git history
(each entry's fixed_in is the first release tag containing a fix commit its
evidence names; each affected release has the entry's functions); they skip
when no repository is at $JANUS_GATEWAY_REPO or the developer mirror (CI has
none).  docs/known-hangs.md says how the entries were verified.
"""

import copy
import functools
import json
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOGUE = os.path.join(ROOT, "janus_gdb", "janus", "known_hangs.json")
HISTORY = os.path.join(ROOT, "tests", "data", "janus_lock_history.json")
SCHEMA = "janus-gdb-known-hangs/1"
KINDS = ("cycle", "leak", "stall")
KEYS = ("id", "ref", "url", "title", "kind", "locks", "taken_in", "waited_in",
        "holder_waits_in", "affects", "fixed_in", "advice", "evidence")
# lock classes as janus_gdb/analysis/sourcecite.py lock_class() names them
FIELD_CLASS = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*$")
GLOBAL_CLASS = re.compile(r"^[A-Za-z_][\w.-]*\.(c|cc|cpp): [A-Za-z_]\w*$")
FUNCTION = re.compile(r"^[A-Za-z_]\w*$")
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
REF = re.compile(r"^((PR )?#\d+|commit [0-9a-f]{7,40})$")
URL = "https://github.com/meetecho/janus-gateway/"
FIX_COMMIT = re.compile(r"\b(?:fix|merged as) ([0-9a-f]{7,40})\b", re.I)
HISTORY_KIND = {"missing-unlock": "leak", "inversion": "cycle"}


def load(path):
    with open(path) as f:
        return json.load(f)


def version(text):
    m = VERSION.match(text) if isinstance(text, str) else None
    return tuple(int(x) for x in m.groups()) if m else None


def is_class(name):
    return isinstance(name, str) and bool(FIELD_CLASS.match(name) or GLOBAL_CLASS.match(name))


def _function_map(e, key, problems):
    """The {class: [function, ...]} of entry E's KEY, checked."""
    fmap = e.get(key)
    if not isinstance(fmap, dict):
        problems.append("%s: %s is not an object" % (e.get("id"), key))
        return {}
    for cls, fns in fmap.items():
        if cls not in e.get("locks", []):
            problems.append("%s: %s names %r, which is not in locks" % (e.get("id"), key, cls))
        if not isinstance(fns, list) or not fns \
                or not all(isinstance(f, str) and FUNCTION.match(f) for f in fns):
            problems.append("%s: %s[%r] is not a list of function names" % (e.get("id"), key, cls))
    return fmap


def _check_versions(e, problems):
    eid = e.get("id")
    aff = e.get("affects")
    if not isinstance(aff, dict) or set(aff) != set(("from", "to")):
        problems.append("%s: affects must be {from, to}" % eid)
        return
    frm, to, fixed = aff["from"], aff["to"], e.get("fixed_in")
    for what, v in (("affects.from", frm), ("affects.to", to), ("fixed_in", fixed)):
        if v is not None and version(v) is None:
            problems.append("%s: %s %r is not X.Y.Z" % (eid, what, v))
            return
    if frm is not None and to is None:
        problems.append("%s: affects.from without affects.to" % eid)
    if frm is not None and to is not None and version(frm) > version(to):
        problems.append("%s: affects.from %s is after affects.to %s" % (eid, frm, to))
    if to is not None and fixed is not None and version(to) >= version(fixed):
        problems.append("%s: affects.to %s is not before fixed_in %s" % (eid, to, fixed))


def check_entry(e):
    """Problems of one catalogue entry, as sentences naming its id."""
    problems = []
    if not isinstance(e, dict):
        return ["an entry is not an object: %r" % (e,)]
    eid = e.get("id")
    missing = [k for k in KEYS if k not in e]
    extra = [k for k in e if k not in KEYS]
    if missing or extra:
        problems.append("%s: keys missing %s, unknown %s" % (eid, missing, extra))
        return problems
    if not isinstance(eid, str) or not ID.match(eid):
        problems.append("%r: id is not lower-case words joined by '-'" % (eid,))
    if e["kind"] not in KINDS:
        problems.append("%s: kind %r is not one of %s" % (eid, e["kind"], ", ".join(KINDS)))
    if not isinstance(e["ref"], str) or not REF.match(e["ref"]):
        problems.append("%s: ref %r is not '#N', 'PR #N' or 'commit SHA'" % (eid, e["ref"]))
    if not isinstance(e["url"], str) or not e["url"].startswith(URL):
        problems.append("%s: url is not a janus-gateway address" % eid)
    elif isinstance(e["ref"], str) and REF.match(e["ref"]):
        ref = e["ref"]
        if ref.startswith("commit "):       # the url has the full id, the ref a prefix
            ok = e["url"].startswith(URL + "commit/" + ref.split()[1])
        else:
            ok = e["url"] == URL + ("pull/" if ref.startswith("PR ") else "issues/") + ref.split("#")[1]
        if not ok:
            problems.append("%s: url %s is not that of ref %s" % (eid, e["url"], ref))
    for key in ("title", "advice", "evidence"):
        if not isinstance(e[key], str) or len(e[key].strip()) < 10:
            problems.append("%s: %s is empty" % (eid, key))
    locks = e["locks"]
    if not isinstance(locks, list) or not locks or len(set(locks)) != len(locks):
        problems.append("%s: locks must be a non-empty list without repeats" % eid)
        return problems
    for cls in locks:
        if not is_class(cls):
            problems.append("%s: lock class %r is neither 'type.field' nor 'file.c: name'" % (eid, cls))
    taken = _function_map(e, "taken_in", problems)
    waited = _function_map(e, "waited_in", problems)
    holder = e["holder_waits_in"]
    if not isinstance(holder, list) or not all(isinstance(f, str) and FUNCTION.match(f) for f in holder):
        problems.append("%s: holder_waits_in is not a list of function names" % eid)
    for cls in locks:
        if cls not in taken:
            problems.append("%s: no taken_in for %s" % (eid, cls))
        if e["kind"] == "cycle" and cls not in waited:
            problems.append("%s: cycle without waited_in for %s" % (eid, cls))
    if e["kind"] != "cycle" and waited:
        problems.append("%s: waited_in is only for cycles" % eid)
    if e["kind"] != "stall" and holder:
        problems.append("%s: holder_waits_in is only for stalls" % eid)
    if e["kind"] == "leak" and len(locks) != 1:
        problems.append("%s: a leak names one lock" % eid)
    _check_versions(e, problems)
    return problems


def covers(entry, h):
    """Whether catalogue ENTRY is history-table entry H: the same kind, lock
    classes, functions (each site's function among the entry's) and fix release."""
    if entry.get("kind") != HISTORY_KIND.get(h["kind"]) or set(entry.get("locks", [])) != set(h["locks"]):
        return False
    fixed = h["fixed_in"][1:] if h["fixed_in"] else None
    if entry.get("fixed_in") != fixed:
        return False
    taken, waited = entry.get("taken_in", {}), entry.get("waited_in", {})
    if h["kind"] == "missing-unlock":
        return h["lock"]["function"] in taken.get(h["lock"]["class"], [])
    return all(edge["held_function"] in taken.get(edge["held"], [])
               and edge["function"] in waited.get(edge["taken"], []) for edge in h["edges"])


def shape(e):
    """What a finding is matched on: kind, classes and functions."""
    return (e.get("kind"), sorted(e.get("locks", [])),
            json.dumps([e.get("taken_in"), e.get("waited_in"), e.get("holder_waits_in")],
                       sort_keys=True))


def problems(catalogue, history):
    """Every problem of CATALOGUE (the parsed file), with HISTORY (the parsed
    history table) that it must cover.  Empty when all is well."""
    out = []
    if not isinstance(catalogue, dict) or catalogue.get("schema") != SCHEMA:
        return ["schema is not %r" % SCHEMA]
    if not set(catalogue) <= set(("schema", "comment", "entries", "unreleased")):
        out.append("top-level keys must be schema, comment, entries, unreleased")
    released = catalogue.get("entries")
    unreleased = catalogue.get("unreleased", [])
    if not isinstance(released, list) or not released or not isinstance(unreleased, list):
        return out + ["no entries"]
    seen = set()
    for e in released + unreleased:
        out.extend(check_entry(e))
        eid = e.get("id") if isinstance(e, dict) else None
        if eid in seen:
            out.append("%s: duplicate id" % eid)
        seen.add(eid)
    for e in released:
        if isinstance(e, dict) and isinstance(e.get("affects"), dict) and e["affects"].get("to") is None:
            out.append("%s: an entry names the last affected release (to); a bug no release "
                       "had goes to unreleased" % e.get("id"))
    for e in unreleased:
        if isinstance(e, dict) and e.get("affects") != {"from": None, "to": None}:
            out.append("%s: an unreleased bug affects no release" % e.get("id"))
    for i, a in enumerate(released):
        for b in released[i + 1:]:
            try:
                if shape(a) == shape(b) and not (
                        version(a["affects"]["to"]) < version(b["affects"]["from"] or "0.0.0")
                        or version(b["affects"]["to"]) < version(a["affects"]["from"] or "0.0.0")):
                    out.append("%s and %s: the same shape in overlapping releases" % (a["id"], b["id"]))
            except (KeyError, TypeError, AttributeError):
                pass            # already reported by check_entry
    entries = [e for e in released + unreleased if isinstance(e, dict)]
    for h in history:
        if not any(covers(e, h) for e in entries):
            out.append("history entry %s: no catalogue entry with its classes, functions "
                       "and fix release" % h["id"])
    return out


@pytest.fixture(scope="module")
def catalogue():
    return load(CATALOGUE)


@pytest.fixture(scope="module")
def history():
    return load(HISTORY)


# --- the file on its own ---------------------------------------------------------

def test_the_catalogue_is_consistent_and_covers_the_history_table(catalogue, history):
    assert problems(catalogue, history) == []


def every(catalogue):
    return catalogue["entries"] + catalogue.get("unreleased", [])


def test_it_has_entries_of_every_kind(catalogue):
    kinds = [e["kind"] for e in catalogue["entries"]]
    assert kinds.count("leak") >= 10 and kinds.count("cycle") >= 4 and kinds.count("stall") >= 1
    assert len(every(catalogue)) >= 30


def test_every_history_entry_is_named_in_the_evidence_of_the_entry_that_covers_it(catalogue, history):
    for h in history:
        covering = [e for e in every(catalogue) if covers(e, h)]
        assert any(("history table %s " % h["id"]) in e["evidence"] for e in covering), h["id"]


def test_the_example_of_the_design_is_in_the_catalogue(catalogue):
    """ISSUE15's example entry: #3510, VideoRoom PLI vs Admin handle_info."""
    e = dict((x["id"], x) for x in catalogue["entries"])["gh-3510-pli-vs-handle-info"]
    assert e["kind"] == "cycle" and e["fixed_in"] == "1.3.1" and e["affects"]["to"] == "1.3.0"
    assert e["taken_in"]["janus_ice_handle.mutex"] == ["janus_process_incoming_admin_request"]
    assert e["waited_in"]["janus_ice_handle.mutex"] == ["janus_ice_relay_rtcp"]
    assert e["waited_in"]["janus_videoroom_publisher.streams_mutex"] == ["janus_videoroom_query_session"]


def test_the_msid_leak_covers_debians_1_1_2(catalogue):
    e = dict((x["id"], x) for x in catalogue["entries"])["gh-3513-msid-handle-sdp"]
    assert version(e["affects"]["from"]) <= (1, 1, 2) <= version(e["affects"]["to"])
    assert e["taken_in"] == {"janus_ice_handle.mutex": ["janus_plugin_handle_sdp"]}


def test_the_docs_table_lists_every_entry(catalogue):
    with open(os.path.join(ROOT, "docs", "known-hangs.md")) as f:
        text = f.read()
    # the catalogue's tables (later sections have tables of their own)
    text = text.split("\n## The catalogue\n", 1)[1].split("\n## ", 1)[0]
    rows = [l for l in text.splitlines() if l.startswith("| `")]
    ids = [re.match(r"^\| `([^`]+)`", l).group(1) for l in rows]
    assert sorted(ids) == sorted(e["id"] for e in every(catalogue))
    for e in every(catalogue):
        row = rows[ids.index(e["id"])]
        assert ("| %s |" % (e["fixed_in"] or "\u2013")) in row, e["id"]


def test_the_package_loader_takes_every_entry(catalogue):
    """janus_gdb/janus/knownhangs.py (what the reports match against) reads
    the file without a problem and keeps every entry of "entries"."""
    from janus_gdb.janus import knownhangs
    entries, found = knownhangs.check(copy.deepcopy(catalogue))
    assert found == [] and [e["id"] for e in entries] == [e["id"] for e in catalogue["entries"]]
    assert knownhangs.path() == CATALOGUE


def test_the_file_is_package_data():
    with open(os.path.join(ROOT, "setup.cfg")) as f:
        cfg = f.read()
    m = re.search(r"^\[options\.package_data\]\n((?:[^\[\n].*\n)*)", cfg, re.M)
    assert m and re.search(r"^janus_gdb\.janus\s*=.*\bknown_hangs\.json\b", m.group(1), re.M)


# --- broken copies: the checker rejects each mistake ----------------------------------

def _by_id(cat, eid):
    return [e for e in every(cat) if e["id"] == eid][0]


def dup_id(cat):
    cat["entries"].append(copy.deepcopy(cat["entries"][0]))


def bad_kind(cat):
    _by_id(cat, "gh-3510-pli-vs-handle-info")["kind"] = "deadlock"


def bad_class(cat):
    e = _by_id(cat, "gh-3513-msid-handle-sdp")
    e["locks"] = ["ice_handle->mutex"]
    e["taken_in"] = {"ice_handle->mutex": ["janus_plugin_handle_sdp"]}


def class_not_in_locks(cat):
    _by_id(cat, "gh-3510-pli-vs-handle-info")["waited_in"]["janus.c: sessions_mutex"] = ["janus_x"]


def cycle_without_waited_in(cat):
    del _by_id(cat, "gh-3510-pli-vs-handle-info")["waited_in"]["janus_ice_handle.mutex"]


def leak_without_taken_in(cat):
    _by_id(cat, "gh-3513-msid-handle-sdp")["taken_in"] = {}


def waited_in_on_a_leak(cat):
    e = _by_id(cat, "gh-3513-msid-handle-sdp")
    e["waited_in"] = {"janus_ice_handle.mutex": ["janus_ice_relay_rtcp"]}


def bad_version(cat):
    _by_id(cat, "gh-3513-msid-handle-sdp")["affects"]["to"] = "1.3"


def from_after_to(cat):
    _by_id(cat, "gh-3513-msid-handle-sdp")["affects"]["from"] = "1.3.1"


def to_not_before_fix(cat):
    _by_id(cat, "gh-3513-msid-handle-sdp")["affects"]["to"] = "1.3.1"


def history_entry_dropped(cat):
    cat["entries"] = [e for e in cat["entries"] if e["id"] != "leak-2956-moderate"]


def unreleased_entry_dropped(cat):
    cat["unreleased"] = [e for e in cat["unreleased"] if e["id"] != "inv-3474-room-streams"]


def released_without_to(cat):
    _by_id(cat, "leak-2956-moderate")["affects"] = {"from": None, "to": None}


def unreleased_with_releases(cat):
    _by_id(cat, "inv-3474-room-streams")["affects"] = {"from": "1.2.4", "to": "1.2.4"}


def overlapping_twins(cat):
    _by_id(cat, "leak-3066-legacy-switch")["affects"]["from"] = "0.11.3"


def duplicate_id_across_lists(cat):
    _by_id(cat, "inv-3474-room-streams")["id"] = "leak-2956-moderate"


def fix_release_drifted(cat):
    _by_id(cat, "leak-2956-moderate")["fixed_in"] = "1.0.2"


def function_drifted(cat):
    e = _by_id(cat, "gh-3510-pli-vs-handle-info")
    e["taken_in"]["janus_ice_handle.mutex"] = ["janus_process_incoming_request"]


def url_not_the_ref(cat):
    _by_id(cat, "leak-2956-moderate")["url"] = URL + "issues/2957"


def unknown_key(cat):
    _by_id(cat, "leak-2956-moderate")["versions"] = "1.0.0"


def wrong_schema(cat):
    cat["schema"] = "janus-gdb-known-hangs/2"


BREAKAGES = [dup_id, bad_kind, bad_class, class_not_in_locks, cycle_without_waited_in,
             leak_without_taken_in, waited_in_on_a_leak, bad_version, from_after_to,
             to_not_before_fix, history_entry_dropped, unreleased_entry_dropped, released_without_to,
             unreleased_with_releases, overlapping_twins, duplicate_id_across_lists,
             fix_release_drifted, function_drifted,
             url_not_the_ref, unknown_key, wrong_schema]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.__name__ for b in BREAKAGES])
def test_a_broken_copy_is_rejected(catalogue, history, breakage):
    broken = copy.deepcopy(catalogue)
    breakage(broken)
    found = problems(broken, history)
    assert found, breakage.__name__


def test_the_problems_name_the_entry(catalogue, history):
    broken = copy.deepcopy(catalogue)
    dup_id(broken)
    assert any(p.startswith(catalogue["entries"][0]["id"] + ": duplicate id") for p in problems(broken, history))
    broken = copy.deepcopy(catalogue)
    fix_release_drifted(broken)
    assert any("leak-2956-moderate" in p for p in problems(broken, history))


def test_class_grammar():
    for good in ("janus_ice_handle.mutex", "janus_videoroom.c: rooms_mutex", "janus.c: sessions_mutex",
                 "ssip_t.smutex", "janus_videoroom_publisher.streams_mutex"):
        assert is_class(good), good
    for bad in ("rooms_mutex", "janus_videoroom.c:rooms_mutex", "ice_handle->mutex", "janus.h: x",
                "a.b.c", "", None):
        assert not is_class(bad), bad


# --- against Janus's real history (needs the repository) --------------------------------

DEFAULT_REPO = "/work/.mirror/meetecho+janus-gateway/repo"


@pytest.fixture(scope="module")
def repo():
    path = os.environ.get("JANUS_GATEWAY_REPO") or DEFAULT_REPO
    for cand in (os.path.join(path, ".git"), path):
        if os.path.isdir(cand) and os.path.exists(os.path.join(cand, "HEAD")):
            return cand
    pytest.skip("no janus-gateway repository at %s (set JANUS_GATEWAY_REPO)" % path)


def git(repo, *args):
    res = subprocess.run(["git", "--git-dir=" + repo] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    return res.returncode, res.stdout


@functools.lru_cache(maxsize=None)
def first_release_containing(repo, commit):
    rc, out = git(repo, "tag", "--contains", commit)
    assert rc == 0, "no commit %s in the repository" % commit
    tags = [t[1:] for t in out.split() if t.startswith("v") and version(t[1:])]
    return min(tags, key=version) if tags else None


def test_fixed_in_is_the_first_release_containing_a_fix_named_in_the_evidence(repo, catalogue):
    for e in every(catalogue):
        fixes = FIX_COMMIT.findall(e["evidence"])
        assert fixes, "%s: the evidence names no fix commit ('fix SHA')" % e["id"]
        firsts = [first_release_containing(repo, c) for c in fixes]
        released = [v for v in firsts if v]
        first = min(released, key=version) if released else None
        assert first == e["fixed_in"], (e["id"], dict(zip(fixes, firsts)))


def test_the_affected_releases_exist_and_have_the_entry_functions(repo, catalogue):
    for e in catalogue["entries"]:
        names = set(e["holder_waits_in"])
        for fmap in (e["taken_in"], e["waited_in"]):
            for fns in fmap.values():
                names.update(fns)
        for v in set(filter(None, (e["affects"]["from"], e["affects"]["to"]))):
            rc, out = git(repo, "grep", "-h", "-o", "-E", r"\b(%s)\s*\(" % "|".join(sorted(names)),
                          "v" + v, "--", "*.c")
            assert rc in (0, 1), (e["id"], v)
            found = set(re.sub(r"\s*\($", "", m) for m in out.split("\n") if m)
            assert names <= found, (e["id"], v, sorted(names - found))
