#!/usr/bin/env python3
"""Recall of the static lock analysis on Janus's own history.

    python3 bench/history.py [--repo PATH] [--only ID,...] [--scope files|tree]
                             [--release REF|none] [--sample N] [--json OUT]
                             [--analysis-root DIR]

tests/data/janus_lock_history.json lists real lock leaks (kind
"missing-unlock") and lock-order inversions (kind "inversion") that Janus
fixed, each with its fix commit and the fix's parent (the tree that still has
the bug).  For every entry this script extracts the entry's sources at the
parent and at the fix (``git archive``, into a temporary directory that is
removed afterwards), runs

    python3 -m janus_gdb lockorder --format json PATH...

(the package is taken from this script's own checkout, or from
--analysis-root) on each, and decides:

  found   a finding at the parent that matches the entry (see matches())
  gone    no finding at the fix matches the entry, its lines moved to the
          fix's numbering through the fix's own diff (map_lines())

It prints one row per entry and the recall: entries found at the parent and
gone at the fix, over all entries.  With --release REF (default: the newest
vX.Y.Z tag) it also runs the analysis on the whole src/ tree of that release
and prints how many findings it reports there, by kind and by file, and a
sample of them (--sample N, fixed seed) to triage by hand.

The Janus repository: --repo, else $JANUS_GATEWAY_REPO, else the developer
mirror /work/.mirror/meetecho+janus-gateway/repo (a bare clone is enough).
It is not available in CI: this is a benchmark, not a test.  The table's
consistency and matches() are unit-tested in tests/test_history_table.py.

Exit status: 0 after the table is printed (whatever the recall), 2 when the
lockorder command is missing or does not print the expected JSON, or the
repository cannot be read.

Assumed JSON shape of the analysis output (adapt matches() and
_finding_edges() if the real one differs)::

  {"schema": "janus-gdb/lockorder/1",
   "findings": [
     {"kind": "missing-unlock", "file": "src/plugins/janus_videoroom.c",
      "function": "...", "lock": {"class": "...", "expr": "...", "line": N},
      "exit": {"line": M, "how": "return"}},
     {"kind": "inversion", "classes": ["A", "B"],
      "edges": [{"held": "A", "taken": "B", "file": "...", "line": N,
                 "function": "...", "held_line": K, "chain": ["f", "g"]}, ...]}],
   "unresolved": [...]}

Stdlib only; Python 3.6+.
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "tests", "data", "janus_lock_history.json")
DEFAULT_REPO = "/work/.mirror/meetecho+janus-gateway/repo"
KINDS = ("missing-unlock", "inversion")
LINE_SLACK = 2          # exit/lock lines may differ by this much
TIMEOUT = 1800          # seconds for one run of the analysis
EXIT_OK = 0
EXIT_MISSING = 2


class BenchError(Exception):
    """Cannot run the benchmark: one line for stderr, exit status 2."""


# --- matching a finding to a table entry --------------------------------------

def norm_class(name):
    """A lock class in a comparable form: 'struct X.f' -> 'X.f'; a global
    'path/file.c: name' -> 'file.c: name'; None for an unknown class."""
    if not name or not isinstance(name, str):
        return None
    name = name.strip()
    if name.startswith("struct "):
        name = name[len("struct "):].strip()
    if ":" in name:
        left, right = name.split(":", 1)
        return "%s: %s" % (os.path.basename(left.strip()), right.strip())
    return name


def class_field(name):
    """The field or variable part of a class: 'X.mutex' -> 'mutex',
    'f.c: rooms_mutex' -> 'rooms_mutex'."""
    name = norm_class(name)
    if name is None:
        return None
    return re.split(r"[.:]\s*", name)[-1]


def _known(name):
    n = norm_class(name)
    return n is not None and not n.startswith(("?", "<", "unknown"))


def _entry_classes(entry, cls):
    """cls and its aliases from the entry, normalized."""
    out = {norm_class(cls)}
    for alias in entry.get("aliases", {}).get(cls, []):
        out.add(norm_class(alias))
    return out


def _same_class(entry, entry_cls, found_cls):
    return norm_class(found_cls) in _entry_classes(entry, entry_cls)


def _basename(path):
    return os.path.basename(path) if isinstance(path, str) else None


def _near(a, b, slack=LINE_SLACK):
    return isinstance(a, int) and isinstance(b, int) and abs(a - b) <= slack


def _finding_edges(finding):
    return [e for e in finding.get("edges") or [] if isinstance(e, dict)]


def _edge_matches(want, got, entry=None):
    """A finding's edge is the entry's edge when it names the same site: the
    function and line (±LINE_SLACK) where the second lock is taken, or where
    the first one is held, and the file when both give one; and the same
    direction: a known held or taken class of the finding must be the
    entry's (a fix that swaps two lock lines leaves both at nearly the same
    lines, in the other order)."""
    if got.get("file") and _basename(got["file"]) not in (
            _basename(want.get("file")), _basename(want.get("held_file"))):
        return False
    entry = entry or {}
    for role in ("held", "taken"):
        if _known(got.get(role)) and not _same_class(entry, want[role], got[role]):
            return False
    if got.get("function") == want["function"] and _near(got.get("line"), want["line"]):
        return True
    chain = got.get("chain") or []
    held_fn = got.get("held_function") or (chain[0] if chain and isinstance(chain[0], str)
                                           else None) or got.get("function")
    return held_fn == want["held_function"] and _near(got.get("held_line"), want["held_line"])


def matches(entry, finding, strict=False):
    """True when FINDING (one element of the analysis' "findings") reports
    the bug of table ENTRY.

    missing-unlock: the same file (basename), no contradicting lock class
    (when both name one, the classes or at least their fields are equal),
    and either the exit line within ±2 of the entry's exit (or one of its
    other leaking exits), or the same lock line and function.
    inversion: the set of the two classes equal (aliases allowed); or, when
    the finding leaves a class unknown, each of the entry's two edges is
    matched by an edge of the finding (function and line of the taken or
    the held lock).

    STRICT (used at the fix commit, to decide that the bug is gone): the
    very sites of the entry, not only its locks.  A leak then needs the exit
    line (the lock line stays where it was after most fixes, and another exit
    of the same function may still leak it); an inversion needs both of the
    entry's edges among the finding's (the fix removed one of them; the same
    two classes may still meet elsewhere, which evaluate() reports apart)."""
    if not isinstance(finding, dict) or finding.get("kind") != entry["kind"]:
        return False
    if entry["kind"] == "missing-unlock":
        lock = finding.get("lock") or {}
        exit_ = finding.get("exit") or {}
        ffile = finding.get("file") or lock.get("file") or exit_.get("file")
        if _basename(ffile) != _basename(entry["lock"]["file"]):
            return False
        fcls = lock.get("class")
        if _known(fcls) and not _same_class(entry, entry["lock"]["class"], fcls) and \
                class_field(fcls) != class_field(entry["lock"]["class"]):
            return False
        exits = [entry["exit"]["line"]] + list(entry["exit"].get("also", []))
        reported = [exit_.get("line")] + [ln for ln in (exit_.get("also") or [])
                                          if isinstance(ln, int)]
        if any(_near(got, line) for line in exits for got in reported):
            return True
        if strict:
            return False
        function = finding.get("function") or lock.get("function")
        return lock.get("line") == entry["lock"]["line"] and \
            function == entry["lock"]["function"]
    # inversion
    edges = _finding_edges(finding)
    both_edges = bool(edges) and all(any(_edge_matches(want, got, entry) for got in edges)
                                     for want in entry["edges"])
    classes = finding.get("classes")
    if not classes:
        classes = []
        for e in edges:
            classes += [e.get("held"), e.get("taken")]
    if classes and all(_known(c) for c in classes):
        got = set(norm_class(c) for c in classes)
        want = [_entry_classes(entry, c) for c in entry["locks"]]
        same = len(got) == len(want) and \
            all(any(g in w for w in want) for g in got) and \
            all(any(g in w for g in got) for w in want)
        return same and (both_edges or not strict)
    return both_edges


# --- moving an entry's lines to the fix commit ---------------------------------

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_hunks(diff_text):
    """(old_start, old_count, new_start, new_count) of each hunk of a -U0 diff."""
    out = []
    for line in diff_text.splitlines():
        m = HUNK.match(line)
        if m:
            a, b, c, d = m.groups()
            out.append((int(a), 1 if b is None else int(b), int(c), 1 if d is None else int(d)))
    return out


def map_line(hunks, line):
    """LINE of the old file in the new file's numbering (a line the diff
    changed maps to where its hunk starts in the new file)."""
    delta = 0
    for a, b, c, d in hunks:
        if b == 0:                      # insertion after old line a
            if line <= a:
                return line + delta
        else:
            if line < a:
                return line + delta
            if line <= a + b - 1:       # changed or deleted
                return max(1, c)
        delta += d - b
    return line + delta


def shift_entry(entry, hunks_of):
    """A copy of ENTRY with every line moved through hunks_of(path)."""
    e = json.loads(json.dumps(entry))

    def mv(path, line):
        return map_line(hunks_of(path), line)
    if e["kind"] == "missing-unlock":
        path = e["lock"]["file"]
        e["lock"]["line"] = mv(path, e["lock"]["line"])
        e["exit"]["line"] = mv(path, e["exit"]["line"])
        e["exit"]["also"] = [mv(path, l) for l in e["exit"].get("also", [])]
    else:
        for edge in e["edges"]:
            edge["line"] = mv(edge["file"], edge["line"])
            edge["held_line"] = mv(edge["held_file"], edge["held_line"])
            for c in edge.get("chain", []):
                c["line"] = mv(c["file"], c["line"])
    return e


# --- git and the analysis -------------------------------------------------------

def git(repo, *args):
    try:
        res = subprocess.run(["git", "--git-dir", repo] + list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
    except OSError as exc:
        raise BenchError("cannot run git: %s" % exc)
    if res.returncode != 0:
        raise BenchError("git %s: %s" % (" ".join(args[:2]), res.stderr.strip()[:300]))
    return res.stdout


def find_repo(arg):
    repo = arg or os.environ.get("JANUS_GATEWAY_REPO") or DEFAULT_REPO
    for cand in (os.path.join(repo, ".git"), repo):
        if os.path.isdir(cand) and os.path.exists(os.path.join(cand, "HEAD")):
            return cand
    raise BenchError("no janus-gateway git repository at %s (use --repo or "
                     "JANUS_GATEWAY_REPO)" % repo)


def archive_paths(files):
    """git archive pathspecs for the sources an entry needs: the whole src/
    (newer layout) or the top-level core sources plus each file's directory
    (older layout, before the move to src/)."""
    if any(f.startswith("src/") for f in files):
        return ["src"]
    specs = [":(glob)*.c", ":(glob)*.h"]
    for f in files:
        d = os.path.dirname(f)
        if d and d not in specs:
            specs.append(d)
    return specs


def extract(repo, commit, files, dest):
    """The sources of COMMIT that FILES need, under DEST."""
    os.makedirs(dest)
    data = subprocess.run(["git", "--git-dir", repo, "archive", "--format=tar", commit, "--"]
                          + archive_paths(files), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    if data.returncode != 0:
        raise BenchError("git archive %s: %s" % (commit[:12], data.stderr.decode()[:300]))
    tar = subprocess.run(["tar", "-x", "-C", dest], input=data.stdout,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if tar.returncode != 0:
        raise BenchError("tar: %s" % tar.stderr.decode()[:300])


def analysis_paths(dest, files, scope):
    """What to give the analysis: the whole extracted tree (scope 'tree'),
    or the entry's files plus every header of their directories and of the
    core directory (scope 'files')."""
    if scope == "tree":
        return [dest]
    out = []
    dirs = set(os.path.dirname(f) for f in files)
    dirs.add("src" if any(f.startswith("src/") for f in files) else "")
    for f in files:
        out.append(os.path.join(dest, f))
    for d in sorted(dirs):
        full = os.path.join(dest, d)
        if os.path.isdir(full):
            for name in sorted(os.listdir(full)):
                if name.endswith(".h"):
                    out.append(os.path.join(full, name))
    return out


ANALYSIS_ROOT = [ROOT]     # where the janus_gdb package is taken from (--analysis-root)


def run_analysis(paths, cwd=None):
    """The analysis' JSON on PATHS (BenchError when the command is missing
    or its output is not the expected JSON)."""
    root = ANALYSIS_ROOT[0]
    cwd = cwd or root
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "janus_gdb", "lockorder", "--format", "json"] + list(paths)
    try:
        res = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError("lockorder took more than %d s on %s" % (TIMEOUT, paths[0]))
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        what = ("the lockorder command is missing" if res.returncode != 0 else
                "the lockorder command printed no JSON object with a 'findings' list")
        raise BenchError("%s (python3 -m janus_gdb lockorder --format json PATH... exited %d: %s)"
                         % (what, res.returncode, (res.stderr.strip() or res.stdout.strip())[:300]))
    return doc


def check_analysis():
    """Fail early (exit 2) when `janus_gdb lockorder` is not there."""
    tmp = tempfile.mkdtemp(prefix="janus-history-probe-")
    try:
        with open(os.path.join(tmp, "empty.c"), "w") as f:
            f.write("void f(void) {}\n")
        run_analysis([tmp])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the benchmark --------------------------------------------------------------

def load_table(path=TABLE):
    with open(path) as f:
        return json.load(f)


def evaluate(repo, entry, workdir, scope, cache):
    """ENTRY's result: found (a finding at the parent matches it), sites
    (one even matches strictly: the entry's exit line, or both of its
    edges), gone (no finding at the fix matches it strictly), elsewhere (at
    the fix the same lock or classes are still reported at other sites),
    detail (one line)."""
    hunk_cache = {}

    def hunks_of(path):
        if path not in hunk_cache:
            hunk_cache[path] = parse_hunks(git(repo, "diff", "-U0", entry["parent"],
                                               entry["fix"], "--", path))
        return hunk_cache[path]
    results = {}
    for role, commit in (("parent", entry["parent"]), ("fix", entry["fix"])):
        key = (commit, tuple(entry["files"]), scope)
        if key not in cache:
            dest = os.path.join(workdir, "%s-%s" % (commit[:12], len(cache)))
            extract(repo, commit, entry["files"], dest)
            doc = run_analysis(analysis_paths(dest, entry["files"], scope))
            cache[key] = doc.get("findings", [])
            shutil.rmtree(dest, ignore_errors=True)
        results[role] = cache[key]
    before = [f for f in results["parent"] if matches(entry, f)]
    sites = any(matches(entry, f, strict=True) for f in before)
    moved = shift_entry(entry, hunks_of)
    after = [f for f in results["fix"] if matches(moved, f, strict=True)]
    loose = [f for f in results["fix"] if matches(moved, f) and f not in after]
    detail = "%d finding(s) at the parent, %d matching; %d at the fix, %d matching" % (
        len(results["parent"]), len(before), len(results["fix"]), len(after))
    if loose:
        detail += "; at the fix the same lock%s still reported elsewhere: %s" % (
            " is" if entry["kind"] == "missing-unlock" else "s are",
            "; ".join(str(f.get("text") or json.dumps(f, sort_keys=True))[:200] for f in loose[:2]))
    return {"found": bool(before), "sites": sites, "gone": not after, "elsewhere": bool(loose),
            "detail": detail}


def site(entry):
    if entry["kind"] == "missing-unlock":
        return "%s:%d" % (os.path.basename(entry["lock"]["file"]), entry["exit"]["line"])
    e = entry["edges"][0]
    return "%s:%d" % (os.path.basename(e["file"]), e["line"])


def newest_release(repo):
    tags = [t for t in git(repo, "tag", "--list", "v*").split() if re.match(r"^v\d+\.\d+\.\d+$", t)]
    if not tags:
        raise BenchError("no vX.Y.Z tag in %s" % repo)
    return max(tags, key=lambda t: tuple(int(x) for x in t[1:].split(".")))


def release_report(repo, ref, workdir, sample, out):
    dest = os.path.join(workdir, "release")
    extract(repo, ref, ["src/janus.c"], dest)
    doc = run_analysis([os.path.join(dest, "src")])
    findings = doc.get("findings", [])
    print("\n%s: %d finding(s) on src/ (%s)" % (ref, len(findings), ", ".join(
        "%s %d" % kv for kv in sorted(collections.Counter(
            f.get("kind", "?") for f in findings).items())) or "none"))
    by_file = collections.Counter()
    for f in findings:
        path = f.get("file") or (f.get("lock") or {}).get("file") or \
            ((_finding_edges(f) or [{}])[0].get("file"))
        by_file[_basename(path) or "?"] += 1
    for name, n in by_file.most_common():
        print("  %-28s %d" % (name, n))
    rnd = random.Random(1)
    picked = rnd.sample(findings, min(sample, len(findings)))
    if picked:
        print("sample to triage (seed 1):")
        for i, f in enumerate(picked, 1):
            text = f.get("text") or json.dumps(f, sort_keys=True)
            print("  %d. %s" % (i, text.replace(dest + os.sep, "")[:600]))
    if out:
        out["release"] = {"ref": ref, "findings": findings, "sample": picked}
    return findings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", help="janus-gateway git repository (default $JANUS_GATEWAY_REPO "
                    "or %s)" % DEFAULT_REPO)
    ap.add_argument("--only", help="comma-separated entry ids")
    ap.add_argument("--scope", choices=("files", "tree"), default="files",
                    help="give the analysis the entry's files and headers (default) or the "
                    "whole extracted tree")
    ap.add_argument("--release", help="also count the findings on this release "
                    "(default: the newest vX.Y.Z tag); 'none' to skip")
    ap.add_argument("--sample", type=int, default=10, help="findings on the release to print")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--verbose", action="store_true", help="a detail line under each row")
    ap.add_argument("--analysis-root", default=ROOT,
                    help="a janus-gdb checkout whose janus_gdb package runs the analysis "
                    "(default: this one)")
    ap.add_argument("--table", default=TABLE, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    ANALYSIS_ROOT[0] = os.path.abspath(args.analysis_root)
    try:
        repo = find_repo(args.repo)
        table = load_table(args.table)
        if args.only:
            wanted = set(args.only.split(","))
            table = [e for e in table if e["id"] in wanted]
        check_analysis()
        workdir = tempfile.mkdtemp(prefix="janus-history-")
        try:
            cache = {}
            rows = []
            print("%-30s %-14s %-21s %-26s %-9s %-5s %-5s %-4s %s" % (
                "id", "kind", "version", "site", "fix", "found", "sites", "gone", "elsewhere"))
            for entry in table:
                try:
                    r = evaluate(repo, entry, workdir, args.scope, cache)
                except BenchError as exc:       # one entry's trouble is that row's, not the run's
                    r = {"found": False, "sites": False, "gone": False, "elsewhere": False,
                         "detail": "error: %s" % exc, "error": True}
                r["id"] = entry["id"]
                rows.append(r)
                yes = lambda b: "yes" if b else "NO"         # noqa: E731
                print("%-30s %-14s %-21s %-26s %-9s %-5s %-5s %-4s %s" % (
                    entry["id"], entry["kind"], entry["version"], site(entry), entry["fix"][:9],
                    yes(r["found"]), yes(r["sites"]) if r["found"] else "-",
                    "ERROR" if r.get("error") else yes(r["gone"]), "yes" if r["elsewhere"] else "-"))
                if args.verbose or r.get("error"):
                    print("    " + r["detail"])
            hits = sum(1 for r in rows if r["found"] and r["gone"])
            print("\nrecall: %d/%d found at the parent and gone at the fix" % (hits, len(rows)))
            errors = sum(1 for r in rows if r.get("error"))
            if errors:
                print("  (%d entr%s could not be run: counted as not found)" % (
                    errors, "y" if errors == 1 else "ies"))
            for kind in KINDS:
                k = [r for e, r in zip(table, rows) if e["kind"] == kind]
                print("  %-14s %d/%d (%d found at their own sites; %d with the same locks still "
                      "reported elsewhere at the fix)" % (
                          kind, sum(1 for r in k if r["found"] and r["gone"]), len(k),
                          sum(1 for r in k if r["found"] and r["sites"]),
                          sum(1 for r in k if r["elsewhere"])))
            out = {"rows": rows, "recall": [hits, len(rows)]}
            if (args.release or "").lower() != "none":
                release_report(repo, args.release or newest_release(repo), workdir,
                               args.sample, out)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    except BenchError as exc:
        print("history.py: %s" % exc, file=sys.stderr)
        return EXIT_MISSING
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
