"""Whole-program static lock analysis of C sources: lock classes, the
lock-order graph and its cycles (potential ABBA deadlocks, also through
three or more classes), and missing unlocks.  See docs/static-analysis.md.

Use from other modules (the hang analysis)::

    from .csource import lockorder
    report = lockorder.analyze(["/path/to/janus/src"])
    for f in report.findings:       # Finding objects, most plausible first
        f.kind                      # "missing-unlock" | "inversion"
        f.rank, f.text, f.as_dict() # as_dict(): the JSON finding
    report.unresolved, report.stats, report.as_dict()

``missing_unlocks_for(report, lock_class)`` and ``order_for(report, a, b)``
answer the questions a hang report asks about one class or one pair.

Steps: each file is read once (cfile.parse_text, cached as JSON per file
keyed by path, size, mtime and ANALYSIS_VERSION); then, over all files,
lock expressions become classes (globals ``file.c: name``, struct fields
``struct_type.field`` through the declared types of variables and fields),
calls are resolved (direct calls; ``x->field(...)`` to every function
stored in ``.field`` by a designated initializer anywhere, which covers
``janus_callbacks``, JANUS_PLUGIN_INIT and the transport/event handler
structs; ``janus_refcount_decrease`` to the free function given to
``janus_refcount_init`` for that struct type), summaries are computed
(classes a function takes, directly or through calls; classes it releases
without taking them) and findings are derived.
Pure module: no gdb import.
"""

import json
import os
import time

from ..model import sha256_hex
from . import cfile

ANALYSIS_VERSION = "lockorder-3"
SCHEMA = "janus-gdb/lockorder/1"
MAX_CHAIN = 6           # functions in a call chain to an acquisition
MAX_WITNESSES = 4       # call chains kept per edge of the lock-order graph
MAX_CYCLE = 4           # classes in a cycle
MAX_CYCLES = 200
SOURCE_EXTS = (".c", ".h")
MUTEX_TYPES = frozenset(("janus_mutex", "GMutex", "pthread_mutex_t", "GRecMutex", "GRWLock",
                         "pthread_rwlock_t", "janus_rwlock"))


class Finding(object):
    """One finding; attributes mirror the JSON keys (see as_dict)."""

    def __init__(self, kind, rank, text, **fields):
        self.kind = kind
        self.rank = rank
        self.text = text
        self.fields = fields
        for k, v in fields.items():
            setattr(self, k, v)

    def sort_key(self):
        if self.kind == "missing-unlock":
            return (self.rank, 0, self.file, self.exit["line"])
        return (self.rank, 1, self.classes[0], 0)

    def as_dict(self):
        d = {"kind": self.kind}
        d.update(self.fields)
        d["rank"] = self.rank
        d["text"] = self.text
        return d


class Report(object):
    def __init__(self, findings, unresolved, stats):
        self.findings = findings
        self.unresolved = unresolved
        self.stats = stats

    def as_dict(self):
        return {"schema": SCHEMA, "findings": [f.as_dict() for f in self.findings],
                "unresolved": self.unresolved, "stats": self.stats}


# -- files and the cache -------------------------------------------------

def source_files(paths):
    """The .c/.h files named by PATHS (files, or directories read recursively), sorted."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if f.endswith(SOURCE_EXTS):
                        out.append(os.path.join(root, f))
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise OSError("no such file or directory: %s" % p)
    seen = set()
    return [p for p in out if not (os.path.abspath(p) in seen or seen.add(os.path.abspath(p)))]


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "janus-gdb", "lockorder")


_code_version = []


def code_version():
    """ANALYSIS_VERSION plus a digest of the modules that read a file (a
    cached result never outlives a change of the code that made it)."""
    if not _code_version:
        from . import locksets
        from . import walk
        data = [ANALYSIS_VERSION.encode()]
        for mod in (cfile, walk, locksets):
            try:
                with open(mod.__file__, "rb") as f:
                    data.append(f.read())
            except (OSError, AttributeError, TypeError):
                data.append(b"?")
        _code_version.append(sha256_hex(b"".join(data))[:16])
    return _code_version[0]


def _load(path, use_cache, counts):
    st = os.stat(path)
    ident = "%s\0%d\0%d\0%s" % (os.path.abspath(path), st.st_size, int(st.st_mtime_ns),
                                 code_version())
    cpath = None
    if use_cache:
        cpath = os.path.join(cache_dir(), sha256_hex(ident.encode("utf-8", "replace")) + ".json")
        try:
            with open(cpath) as f:
                data = json.load(f)
            if data.get("ident") == ident:
                counts["cached"] += 1
                data["path"] = path
                return data
        except (OSError, ValueError):
            pass
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    data = cfile.parse_text(path, text)
    data["lines"] = text.count("\n")
    counts["parsed"] += 1
    if cpath:
        data["ident"] = ident
        try:
            os.makedirs(os.path.dirname(cpath), exist_ok=True)
            tmp = cpath + ".%d.tmp" % os.getpid()
            with open(tmp, "w") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, cpath)
        except OSError:
            pass
    return data


# -- the program ---------------------------------------------------------

class _Program(object):
    def __init__(self, files):
        self.files = files
        self.structs = {}
        self.typedefs = {}
        self.gvars = {}      # name -> [(file index, type, static)]
        self.byname = {}     # function name -> [gid]
        self.funcs = []      # gid -> (file index, function dict)
        self.inits = {}      # field -> set of gids
        self.frees = {}      # struct type -> set of gids
        self.unresolved = []
        self._unres_seen = set()
        for fi, data in enumerate(files):
            for name, fields in data["structs"].items():
                if fields or name not in self.structs:
                    self.structs[name] = fields
            self.typedefs.update(data["typedefs"])
            statics = set(data["statics"])
            for name, typ in data["globals"].items():
                self.gvars.setdefault(name, []).append((fi, typ, name in statics))
            for fn in data["functions"]:
                gid = len(self.funcs)
                self.funcs.append((fi, fn))
                self.byname.setdefault(fn["name"], []).append(gid)
        self.init_files = {}   # field -> file indexes that store a function in it
        self.typed_inits = {}  # (struct type, field) -> set of gids
        self.untyped_inits = {}  # field -> gids stored by initializers of an unknown type
        for fi, data in enumerate(files):
            for field, fname, _line, typ in data["inits"]:
                for gid in self.lookup(fname, fi):
                    self.inits.setdefault(field, set()).add(gid)
                    if typ:
                        self.typed_inits.setdefault((self.base(typ), field), set()).add(gid)
                    else:
                        self.untyped_inits.setdefault(field, set()).add(gid)
                    self.init_files.setdefault(field, set()).add(fi)
        for gid, (fi, fn) in enumerate(self.funcs):
            for key, fname, line in fn["refinits"]:
                typ = self.container_type(key, fi)
                targets = self.lookup(fname, fi)
                if typ and targets:
                    self.frees.setdefault(typ, set()).update(targets)

    def base(self, typ):
        for _ in range(8):
            if typ in self.structs and self.structs[typ]:
                return typ
            nxt = self.typedefs.get(typ)
            if not nxt or nxt == typ:
                return typ
            typ = nxt
        return typ

    def lookup(self, name, fi):
        """gids of the function NAME as seen from file FI."""
        gids = self.byname.get(name)
        if not gids:
            return []
        local = [g for g in gids if self.funcs[g][0] == fi]
        if local:
            return local
        return [g for g in gids if not self.funcs[g][1]["static"]]

    def _root_type(self, head, fi):
        if head.startswith("@"):
            return self.base(head[1:]), None
        name = head[1:]
        cands = self.gvars.get(name) or []
        own = [c for c in cands if c[0] == fi]
        pick = own or [c for c in cands if not c[2]]
        if len(pick) >= 1:
            return self.base(pick[0][1]), pick[0][0]
        return None, None

    def container_type(self, key, fi):
        """Struct type holding the last field of KEY (``@T|ref`` -> T)."""
        if key.startswith("!"):
            return None
        parts = key.split("|")
        if len(parts) < 2:
            return None
        typ, _gfi = self._root_type(parts[0], fi)
        for f in parts[1:-1]:
            if typ is None:
                return None
            typ = self.base((self.structs.get(typ) or {}).get(f) or "") or None
        return typ

    def class_of(self, key, expr, fi, fn):
        """(class name, resolved?) of the lock KEY taken in function FN of file FI."""
        fname = os.path.basename(self.files[fi]["path"])
        if key.startswith("!"):
            return "?%s:%s: %s" % (fname, fn["name"], expr), False
        parts = key.split("|")
        if len(parts) == 1:
            head = parts[0]
            if head.startswith("$"):
                typ, gfi = self._root_type(head, fi)
                if gfi is not None:
                    return "%s: %s" % (os.path.basename(self.files[gfi]["path"]), head[1:]), True
            return "?%s:%s: %s" % (fname, fn["name"], expr), False
        typ, _gfi = self._root_type(parts[0], fi)
        fields = parts[1:]
        for k, f in enumerate(fields[:-1]):
            if typ is None:
                break
            typ = self.base((self.structs.get(typ) or {}).get(f) or "") or None
        if typ is None or typ == "?":
            return "?%s:%s: %s" % (fname, fn["name"], expr), False
        return "%s.%s" % (typ, fields[-1]), True

    def callees(self, call, fi, fn, held):
        """gids a call record may run (and a note when it cannot be resolved)."""
        name, line = call[0], call[1]
        if name.startswith("->"):
            got = None
            typed = False
            if call[3]:
                typ = self.container_type(call[3] + "|" + name[2:], fi)
                if typ:
                    got = self.typed_inits.get((typ, name[2:]))
                    # x's struct is known: a function stored into that field
                    # of another struct type is not what x->field() runs
                    typed = name[2:] in (self.structs.get(typ) or {})
            if not got:
                got = self.untyped_inits.get(name[2:]) if typed else self.inits.get(name[2:])
            if got:
                return sorted(got)
            if held:
                self.note("function pointer ->%s()" % name[2:], fi, line, fn["name"])
            return []
        if name.startswith("janus_refcount_decrease") and call[3]:
            typ = self.container_type(call[3], fi)
            if typ and typ in self.frees:
                return sorted(self.frees[typ])
            return []
        got = self.lookup(name, fi)
        if not got and held and name in fn["types"] and name not in self.byname:
            self.note("call through the function pointer variable %s()" % name, fi, line,
                      fn["name"])
        return got

    def note(self, what, fi, line, func):
        key = (what, fi, line)
        if key not in self._unres_seen:
            self._unres_seen.add(key)
            self.unresolved.append({"what": what, "file": self.files[fi]["path"],
                                    "line": line, "function": func})


class Timeout(Exception):
    """The analysis passed its deadline (analyze's DEADLINE)."""


def analyze(paths, use_cache=True, deadline=None):
    """Report of the lock analysis of the C files under PATHS.  DEADLINE
    (a time.time() value): raise Timeout when reading the files passes it."""
    t0 = time.time()
    counts = {"cached": 0, "parsed": 0}
    files = []
    unreadable = []
    for p in source_files(paths):
        if deadline is not None and time.time() > deadline:
            raise Timeout("%d files read in %.1f s" % (len(files), time.time() - t0))
        try:
            files.append(_load(p, use_cache, counts))
        except (OSError, UnicodeError, ValueError, RecursionError) as exc:
            unreadable.append({"what": "file not read: %s" % exc.__class__.__name__,
                               "file": p, "line": 0})
    prog = _Program(files)
    prog.unresolved.extend(unreadable)
    for fi, data in enumerate(files):
        for name, line, ops in data.get("lock_macros", ()):
            if name in prog.byname:
                continue
            prog.note("macro %s() does %s: its calls are not followed" % (name, ops), fi, line, None)
    t1 = time.time()
    if deadline is not None and t1 > deadline:
        raise Timeout("%d files read in %.1f s" % (len(files), t1 - t0))
    classes = _classes(prog)
    for gid, (fi, fn) in enumerate(prog.funcs):
        for a, (_cls, ok) in zip(fn["acqs"], classes[gid]):
            if not ok:
                prog.note("lock class not resolved: `%s` (a class of its own)" % a[0], fi, a[2],
                          fn["name"])
    reach = _reach(prog, classes)
    edges = _edges(prog, classes, reach)
    findings = _missing_unlocks(prog, classes) + _inversions(prog, edges)
    findings.sort(key=lambda f: f.sort_key())
    for gid, (fi, fn) in enumerate(prog.funcs):
        for note in fn["notes"]:
            prog.note(note, fi, fn["line"], fn["name"])
    stats = {"files": len(files), "lines": sum(f.get("lines", 0) for f in files),
             "functions": len(prog.funcs),
             "acquisitions": sum(len(fn["acqs"]) for _fi, fn in prog.funcs),
             "classes": len(set(c for cl in classes for c, _r in cl)),
             "edges": len(edges),
             "thread_entries": len(set(t[0] for _fi, fn in prog.funcs for t in fn["threads"])),
             "missing_unlocks": sum(1 for f in findings if f.kind == "missing-unlock"),
             "inversions": sum(1 for f in findings if f.kind == "inversion"),
             "single_thread_inversions": sum(1 for f in findings if f.kind == "inversion" and
                                             getattr(f, "single_thread", None)),
             "files_cached": counts["cached"], "files_parsed": counts["parsed"],
             "seconds_read": round(t1 - t0, 3), "seconds": round(time.time() - t0, 3)}
    return Report(findings, prog.unresolved, stats)


def findings(paths, use_cache=True):
    """The findings (Finding objects, most plausible first) for PATHS."""
    return analyze(paths, use_cache).findings


def missing_unlocks_for(report, lock_class):
    """Missing-unlock findings of REPORT whose lock is of LOCK_CLASS."""
    return [f for f in report.findings
            if f.kind == "missing-unlock" and f.lock["class"] == lock_class]


def order_for(report, a, b):
    """Inversion findings of REPORT whose cycle contains classes A and B."""
    return [f for f in report.findings
            if f.kind == "inversion" and a in f.classes and b in f.classes]


# -- summaries -----------------------------------------------------------

def _classes(prog):
    """Per gid: [(class, resolved)] of its acquisitions, in order."""
    out = []
    for fi, fn in prog.funcs:
        out.append([prog.class_of(a[1], a[0], fi, fn) for a in fn["acqs"]])
    return out


def _pruned(fn, guards, nullparams):
    """Is a call or acquisition of FN under GUARDS (variables known non-NULL
    there) impossible when FN's parameters NULLPARAMS are NULL?"""
    if not nullparams or not guards:
        return False
    derived = fn.get("derived") or {}
    for g in guards:
        if g in nullparams or nullparams.intersection(derived.get(g) or ()):
            return True
    return False


def _null_params(prog, call, g):
    """Names of G's parameters a call passes a literal NULL to."""
    params = prog.funcs[g][1]["params"]
    nulls = call[4] if len(call) > 4 else ()
    return frozenset(params[k][0] for k in nulls if k < len(params))


def _reach(prog, classes):
    """Per gid: {class: (chain of gids, line, file index, resolved, weak, fans)}
    of the blocking acquisitions it may make, directly or through calls
    (shortest chain first found; weak: only through a refcount free
    function, which runs when the last reference goes; fans: the
    function-pointer fields resolved to one of several functions on the way).
    A call that passes NULL to a parameter does not follow the callee's
    calls and locks that are guarded by that parameter (or a variable
    initialized from it) being non-NULL (``if (jsep) handle_sdp(..)``)."""
    n = len(prog.funcs)
    reach = [dict() for _ in range(n)]
    calls_of = [None] * n
    for gid, (fi, fn) in enumerate(prog.funcs):
        for a, (cls, ok) in zip(fn["acqs"], classes[gid]):
            if a[3] == "lock" and cls not in reach[gid]:
                reach[gid][cls] = ((gid,), a[2], fi, ok, False, ())
        cs = {}
        for call in fn["calls"]:
            weak = call[0].startswith("janus_refcount_decrease")
            gs = prog.callees(call, fi, fn, call[2])
            guards = tuple(call[5]) if len(call) > 5 else ()
            freed = prog.container_type(call[3], fi) if weak and call[3] else None
            for g in gs:
                if g != gid:
                    fan = None
                    if call[0].startswith("->") and len(gs) > 1:
                        fan = (call[0][2:], prog.funcs[g][0])
                    key = (g, _null_params(prog, call, g), guards, freed or "")
                    old = cs.get(key)
                    cs[key] = (weak and (old is None or old[0]), fan if old is None else old[1])
        # (a fan is None or a tuple, null params a frozenset: order them by repr)
        calls_of[gid] = sorted(((k[0], w, f, k[1], k[2], k[3]) for k, (w, f) in cs.items()),
                               key=lambda c: (c[0], c[1], repr(c[2]), sorted(c[3]), repr(c[4:])))
    prog.calls_of = calls_of

    def merge(mine, gid, src, weak_call, fan_call, freed=""):
        changed = False
        for cls, (chain, line, fi, ok, weak, fan) in src.items():
            if gid in chain:
                continue
            if freed and len(chain) == 1 and cls.startswith(freed + "."):
                continue  # a free function taking its own object's lock: nobody else holds it
            w = weak or weak_call
            old = mine.get(cls)
            if old is None or (old[4] and not w and len(old[0]) > 1):
                mine[cls] = ((gid,) + chain, line, fi, ok, w,
                             ((fan_call,) if fan_call else ()) + fan)
                changed = True
        return changed

    def filtered(g, nullparams, table, memo):
        """Reach of G when called with NULL for NULLPARAMS."""
        key = (g, nullparams)
        got = memo.get(key)
        if got is not None:
            return got
        fi, fn = prog.funcs[g]
        out = {}
        memo[key] = out   # a recursive call sees what is known so far
        for a, (cls, ok) in zip(fn["acqs"], classes[g]):
            if a[3] == "lock" and cls not in out and \
                    not _pruned(fn, a[6] if len(a) > 6 else (), nullparams):
                out[cls] = ((g,), a[2], fi, ok, False, ())
        for g2, weak_call, fan_call, p2, guards, freed in calls_of[g]:
            if not _pruned(fn, guards, nullparams):
                # the callee's own NULL/FALSE arguments still hold down there
                src = filtered(g2, p2, table, memo) if p2 else table[g2]
                merge(out, g, src, weak_call, fan_call, freed)
        return out

    prog.filtered_reach = lambda g, nullparams: filtered(g, nullparams, reach, final_memo)
    for _round in range(MAX_CHAIN - 1):
        changed = False
        nxt = [dict(r) for r in reach]
        memo = {}
        for gid in range(n):
            mine = nxt[gid]
            for g, weak_call, fan_call, nullparams, _guards, freed in calls_of[gid]:
                src = filtered(g, nullparams, reach, memo) if nullparams else reach[g]
                if merge(mine, gid, src, weak_call, fan_call, freed):
                    changed = True
        reach = nxt
        if not changed:
            break
    final_memo = {}
    prog.filtered_reach = lambda g, nullparams: (
        filtered(g, nullparams, reach, final_memo) if nullparams else reach[g])
    prog.callee_gids = [sorted(set(c[0] for c in cs)) for cs in calls_of]
    return reach


def _edges(prog, classes, reach):
    """{(held class, taken class): [witness dicts]} of the lock-order graph."""
    edges = {}

    roots = prog.edge_roots = {}   # (held, taken) -> gids holding the first lock, all witnesses

    def add(a, b, w):
        if a == b:
            return
        roots.setdefault((a, b), set()).add(w["root"])
        lst = edges.setdefault((a, b), [])
        if len(lst) < 64:
            lst.append(w)

    for gid, (fi, fn) in enumerate(prog.funcs):
        path = prog.files[fi]["path"]
        acqs = fn["acqs"]
        for k, a in enumerate(acqs):
            if a[3] != "lock":
                continue
            for aid, _definite in a[4]:
                held_cls, ok1 = classes[gid][aid]
                cls, ok2 = classes[gid][k]
                add(held_cls, cls, {"root": gid,"held": held_cls, "taken": cls, "file": path, "line": a[2],
                                    "function": fn["name"], "held_line": acqs[aid][2],
                                    "held_file": path, "chain": [fn["name"]],
                                    "call_line": None, "resolved": ok1 and ok2})
        for call in fn["calls"]:
            if not call[2]:
                continue
            for g in prog.callees(call, fi, fn, call[2]):
                if g == gid:
                    continue
                weak_call = call[0].startswith("janus_refcount_decrease")
                gfan = ()
                if call[0].startswith("->"):
                    gfan = ((call[0][2:], prog.funcs[g][0]),)
                src = prog.filtered_reach(g, _null_params(prog, call, g))
                freed = prog.container_type(call[3], fi) if weak_call and call[3] else None
                for cls, (chain, line, cfi, ok2, weak, fan) in src.items():
                    if freed and len(chain) == 1 and cls.startswith(freed + "."):
                        continue
                    if any(f[1] != fi and fi in prog.init_files.get(f[0], ()) for f in gfan + fan):
                        continue  # a file calls back its own implementation, not another's
                    for aid, _definite in call[2]:
                        held_cls, ok1 = classes[gid][aid]
                        add(held_cls, cls, {
                            "root": gid, "held": held_cls, "taken": cls, "file": prog.files[cfi]["path"],
                            "line": line, "function": prog.funcs[chain[-1]][1]["name"],
                            "held_line": acqs[aid][2], "held_file": path,
                            "chain": [fn["name"]] + [prog.funcs[c][1]["name"] for c in chain],
                            "call_line": call[1], "via_pointer": call[0].startswith("->"),
                            "via_free": weak or weak_call, "resolved": ok1 and ok2})
    for key, lst in edges.items():
        lst.sort(key=lambda w: (bool(w.get("via_free")), len(w["chain"]), w["file"], w["line"]))
        # one witness per (function holding, function taking) pair
        seen = set()
        keep = []
        for w in lst:
            sig = (w["chain"][0], w["chain"][-1], w["line"])
            if sig not in seen:
                seen.add(sig)
                keep.append(w)
        edges[key] = keep[:MAX_WITNESSES]
    return edges


# -- findings ------------------------------------------------------------

def _missing_unlocks(prog, classes):
    callers = {}
    for gid, cs in enumerate(prog.callee_gids):
        for g in cs:
            callers.setdefault(g, set()).add(gid)
    foreign = []
    for gid, (fi, fn) in enumerate(prog.funcs):
        rel = set()
        for expr, key, _line in fn["releases"]:
            rel.add(prog.class_of(key, expr, fi, fn)[0])
        foreign.append(rel)
    out = []
    for gid, (fi, fn) in enumerate(prog.funcs):
        if not fn["exits"]:
            continue
        path = prog.files[fi]["path"]
        base = os.path.basename(path)
        name = fn["name"]
        lname = name.lower()
        if "lock" in lname and "unlock" not in lname:
            continue  # a lock wrapper by name
        acqs = fn["acqs"]
        # keys held (definitely) at every exit: the function returns locked
        held_count = {}
        for ex in fn["exits"]:
            for key in set(acqs[aid][1] for aid, d, _v in ex[2] if d and ex[1] == "return"):
                held_count[key] = held_count.get(key, 0) + 1
        # classes it releases itself, whatever expression it unlocks them by
        unlocked_cls = set(prog.class_of(k, k, fi, fn)[0] for k in fn["unlocked"])
        seen = set()
        for line, how, held, ret in fn["exits"]:
            for aid, definite, via in held:
                if not definite:
                    continue
                a = acqs[aid]
                expr, key, lline = a[0], a[1], a[2]
                cls, ok = classes[gid][aid]
                if how == "return" and held_count.get(key, 0) >= fn["nexits"] and \
                        key not in fn["unlocked"] and cls not in unlocked_cls:
                    continue   # holds it on every exit and never releases it: its contract
                root = expr.lstrip("&*(").split("->")[0].split(".")[0]
                if ret and ret == root:
                    continue   # returns the locked object
                if any(cls in foreign[c] for c in callers.get(gid, ())):
                    continue   # a caller unlocks what it took
                released_by_callee = False
                unknown_call = []
                for call in fn["calls"]:
                    if not any(h == aid for h, _d in call[2]):
                        continue
                    gs = prog.callees(call, fi, fn, call[2])
                    if any(cls in foreign[g] for g in gs):
                        released_by_callee = True
                        break
                    if call[0].startswith("->") and not gs:
                        unknown_call.append(call)
                if released_by_callee:
                    continue
                ex_line, ex_how = (via[0], via[1]) if via else (line, how)
                also = list(via[2]) if via and len(via) > 2 else []
                sig = (aid, ex_line, ex_how)
                if sig in seen:
                    continue
                seen.add(sig)
                rank = 2 if unknown_call else 1
                implicit = [ln for ln, aids in fn.get("implicit", ()) if aid in aids] \
                    if not via else []
                text = "missing unlock: %s:%d %s() %s while holding `%s` (%s) taken at %s:%d" % (
                    base, ex_line, name, _how_text(ex_how), expr, cls, base, lline)
                if also:
                    text += "; it also jumps out holding it at %s" % ", ".join(
                        "%s:%d" % (base, ln) for ln in also)
                if via and line != ex_line:
                    text += "; the function then returns at %s:%d still holding it" % (base, line)
                if implicit:
                    rank = 3
                    text += ("; only on the path where none of the conditions of the if/else-if "
                             "chain at %s:%d holds (every branch of it jumps away): check "
                             "whether the code excludes that path" % (base, implicit[0]))
                if unknown_call:
                    text += "; unless an unresolved call (%s at line %d) releases it" % (
                        unknown_call[0][0] + "()", unknown_call[0][1])
                out.append(Finding("missing-unlock", rank, text, file=path, function=name,
                                   lock={"class": cls, "expr": expr, "line": lline},
                                   exit=dict({"line": ex_line, "how": ex_how, "return_line": line},
                                             **({"also": also} if also else {}))))
    return out


def _how_text(how):
    return {"return": "returns", "goto": "jumps out (goto)", "break": "leaves its loop (break)",
            "continue": "starts the next iteration (continue)"}.get(how, how)


def _cycles(edges):
    """Elementary cycles (lists of classes) of length 2..MAX_CYCLE of the graph."""
    succ = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
    nodes = sorted(succ)
    out = []
    for start in nodes:
        stack = [(start, [start])]
        while stack and len(out) < MAX_CYCLES:
            node, path = stack.pop()
            for nxt in sorted(succ.get(node, ())):
                if nxt == start and len(path) >= 2:
                    out.append(list(path))
                elif nxt > start and nxt not in path and len(path) < MAX_CYCLE:
                    stack.append((nxt, path + [nxt]))
    out.sort(key=lambda c: (len(c), c))
    return out


def _inversions(prog, edges):
    out = []
    single = _single_thread(prog)
    cycles = _cycles(edges)
    pairs2 = set(frozenset(c) for c in cycles if len(c) == 2)
    for cyc in cycles:
        if len(cyc) > 2 and any(frozenset((a, b)) in pairs2 for a in cyc for b in cyc if a < b):
            continue  # a longer cycle over a pair that already forms one: no news
        pairs = [(cyc[k], cyc[(k + 1) % len(cyc)]) for k in range(len(cyc))]
        ws = []
        for a, b in pairs:
            ws.extend(edges[(a, b)])
        best = [edges[p][0] for p in pairs]
        depth = max(len(w["chain"]) for w in best)
        rank = 1 if depth <= 1 else (2 if depth == 2 else 3)
        if any(w.get("via_free") for w in best):
            rank = max(rank, 3)   # needs a last reference dropped under a lock
        if not all(w["resolved"] for w in best) or any(c.startswith("?") for c in cyc):
            rank = 4
        parts = []
        for w in ws:
            parts.append(_edge_text(w))
        text = "lock-order inversion (%s): %s" % (" -> ".join(cyc + [cyc[0]]), "; ".join(parts))
        extra = {}
        one = single(set().union(*[prog.edge_roots.get(p, set()) for p in pairs]))
        if one:
            rank = 4
            extra["single_thread"] = one[0]
            text += ("; every path of every order runs only in the thread %s(), which is "
                     "started once (by %s() at %s:%d): the orders never run at the same time, "
                     "so this cycle cannot deadlock two threads unless %s() is also "
                     "reached in a way the analysis does not see" % (
                         one[0], one[1], os.path.basename(one[2]), one[3], one[0]))
        out.append(Finding("inversion", rank, text, classes=list(cyc),
                           edges=[_edge_json(w) for w in ws], **extra))
    return out


MAX_ANCESTORS = 400


def _single_thread(prog):
    """A function of a set of gids -> (entry name, creator name, file, line)
    when every one of them runs only inside one thread entry function that
    is started exactly once (by ``main`` or by a function stored in an
    ``.init`` field: a plugin's, transport's or handler's init), with
    ``g_thread_new``/``g_thread_try_new``/``pthread_create`` (a thread pool
    may run its function in several threads at once) and that nothing else
    calls; else None."""
    callers = {}
    for gid, cs in enumerate(prog.callee_gids):
        for g in cs:
            callers.setdefault(g, set()).add(gid)
    inits = prog.inits.get("init", set())
    created = {}   # entry name -> [(creator gid, line, call)]
    for gid, (_fi, fn) in enumerate(prog.funcs):
        for t in fn["threads"]:
            created.setdefault(t[0], []).append((gid, t[1], t[2] if len(t) > 2 else "?"))
    once = {}
    for name, sites in created.items():
        gids = prog.byname.get(name) or []
        if len(sites) != 1 or len(gids) != 1 or callers.get(gids[0]):
            continue
        cgid, line, call = sites[0]
        cfi, cfn = prog.funcs[cgid]
        if call not in ("g_thread_new", "g_thread_try_new", "pthread_create"):
            continue
        if cfn["name"] != "main" and cgid not in inits:
            continue
        once[gids[0]] = (name, cfn["name"], prog.files[cfi]["path"], line)
    memo = {}

    def tops(gid):
        if gid in memo:
            return memo[gid]
        seen = set((gid,))
        todo = [gid]
        out = set()
        while todo:
            g = todo.pop()
            up = callers.get(g)
            if not up:
                out.add(g)
                continue
            for c in up:
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
            if len(seen) > MAX_ANCESTORS:
                out = None
                break
        memo[gid] = out
        return out

    def single(gids):
        entry = None
        for g in gids:
            t = tops(g)
            if not t or len(t) != 1:
                return None
            (top,) = tuple(t)
            if top not in once or (entry is not None and entry != top):
                return None
            entry = top
        return once.get(entry)
    return single


def _edge_text(w):
    base = os.path.basename(w["file"])
    hbase = os.path.basename(w["held_file"])
    if w.get("via_free"):
        tail = " (through a refcount free function)"
    else:
        tail = ""
    if len(w["chain"]) == 1:
        return "%s() takes %s at %s:%d while holding %s taken at %s:%d" % (
            w["function"], w["taken"], base, w["line"], w["held"], hbase, w["held_line"])
    return "%s() holds %s (taken at %s:%d) and calls at %s:%d %s, which takes %s at %s:%d%s" % (
        w["chain"][0], w["held"], hbase, w["held_line"], hbase, w["call_line"],
        " -> ".join(w["chain"][1:]), w["taken"], base, w["line"], tail)


def _edge_json(w):
    d = {"held": w["held"], "taken": w["taken"], "file": w["file"], "line": w["line"],
         "function": w["function"], "held_line": w["held_line"], "held_file": w["held_file"],
         "chain": w["chain"], "via_free": bool(w.get("via_free"))}
    if w.get("call_line"):
        d["call_line"] = w["call_line"]
    return d
