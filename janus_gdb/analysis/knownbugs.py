"""Match hang findings against the catalogue of Janus's known lock bugs.

A finding (``fingerprint.Finding``) matches a catalogue entry
(``janus.knownhangs``) when the kind agrees and the lock classes are the
same.  A global variable may match by its name when only its file differs
(a plugin's sources renamed, or a model of it), but only when every listed
function matches too: VideoRoom, AudioBridge and TextRoom each have a
``rooms_mutex``.  A stalled holder may hold more locks than the entry lists (other
releases take other locks on the way); a cycle or a leak must have exactly
the entry's classes.  The match is:

    exact   every function the entry lists for a lock (where it is taken,
            waited for, leaked; where the stalled holder is blocked) is
            among the finding's
    locks   the lock classes only

The target's Janus version decides the wording: inside the entry's affected
releases, ``This is janus-gateway #N``; outside them, or when the version
is unknown, only ``Similar to janus-gateway #N``, never the same bug.  A
finding that matches no entry gets nothing.  Pure module: no gdb.
"""

from ..janus import knownhangs
from ..janus import version as janus_version
from . import fingerprint

EXACT, LOCKS = "exact", "locks"
SHOWN_FUNCTIONS = 4


class Match(object):
    """One finding matched to one catalogue entry."""
    __slots__ = ("entry", "finding", "strength", "in_range", "version", "functions",
                 "renamed")

    def __init__(self, entry, finding, strength, in_range, version, functions, renamed):
        self.entry = entry
        self.finding = finding
        self.strength = strength        # exact | locks
        self.in_range = in_range        # True, False, or None (version unknown)
        self.version = version          # {"text", "how", ...} of the target, or None
        self.functions = functions      # [(role, class, wanted, found)] compared
        self.renamed = renamed          # globals matched by name only: [(entry's, found)]

    def same_bug(self):
        return self.in_range is True

    def sentence(self):
        """``This is janus-gateway #3510 (VideoRoom PLI vs Admin handle_info;
        affects 1.3.0, fixed in 1.3.1): upgrade to 1.3.1 or later``."""
        e = self.entry
        about = "janus-gateway %s (%s; %s)" % (e["ref"], e["title"], affects_text(e))
        if self.in_range and self.strength == EXACT:
            return "This is %s: %s" % (about, e["advice"])
        if self.in_range:
            return ("This may be %s: the same locks, but not all the functions of the bug; "
                    "if it is: %s" % (about, e["advice"]))
        if self.in_range is False:
            return ("Similar to %s, but Janus %s is not one of the affected releases: "
                    "not that bug" % (about, self.version.get("text")))
        return ("Similar to %s; the Janus version is unknown, so this cannot be said to be "
                "that bug" % about)

    def evidence(self):
        """How strong the match is and why, in one phrase."""
        e = self.entry
        if self.strength == EXACT:
            what = "exact: same %s of %s" % (self.finding.kind, ", ".join(e["locks"]))
            funcs = sorted(set(f for _r, _c, _w, found in self.functions for f in found))
            if funcs:
                shown = funcs[:SHOWN_FUNCTIONS]
                what += " in %s" % ", ".join(shown)
                if len(funcs) > len(shown):
                    what += " (+%d)" % (len(funcs) - len(shown))
        else:
            what = "same lock classes only (%s)" % ", ".join(e["locks"])
            missing = ["%s %s in %s" % (r, c, "/".join(w)) for r, c, w, found in self.functions
                       if not set(found) & set(w)]
            if missing:
                what += "; not seen: %s" % "; ".join(missing[:2])
        if self.renamed:
            what += "; %s matched by variable name only" % ", ".join(
                "%s as %s" % (a, b) for a, b in self.renamed)
        v = self.version
        if v is None:
            what += "; Janus version unknown"
        else:
            what += "; Janus %s (%s) %s" % (
                v.get("text"), v.get("how") or "read from the target",
                "is affected" if self.in_range else "is outside the affected releases")
        return what

    def to_dict(self):
        e = self.entry
        return {"id": e["id"], "ref": e["ref"], "url": e.get("url"), "title": e["title"],
                "strength": self.strength, "same_bug": self.same_bug(),
                "version_in_range": self.in_range,
                "affects": dict(e["affects"]), "fixed_in": e.get("fixed_in"),
                "advice": e["advice"], "sentence": self.sentence(),
                "evidence": self.evidence()}


def affects_text(entry):
    """``affects 1.3.0``, ``affects 1.0.0 to 1.3.0``, ``affects releases up to
    1.2.4``, with ``, fixed in X`` when known."""
    a = entry["affects"]
    lo, hi = a.get("from"), a["to"]
    if lo == hi:
        text = "affects %s" % hi
    elif lo is None:
        text = "affects releases up to %s" % hi
    else:
        text = "affects %s to %s" % (lo, hi)
    if entry.get("fixed_in"):
        text += ", fixed in %s" % entry["fixed_in"]
    else:
        text += ", not fixed"
    return text


def in_range(entry, version):
    """True/False: VERSION (a dict with "text") is among ENTRY's affected
    releases; None when the version is unknown or unreadable."""
    a = entry["affects"]
    return janus_version.in_range(version or {}, a.get("from"), a["to"])


def _global_name(cls):
    return cls.split(": ", 1)[1] if ": " in cls else None


def _pair_classes(wanted, found, subset=False):
    """{entry class: finding class} when the classes are the same sets (a
    global may pair by name alone), else None; and the renamed pairs.
    SUBSET: the finding may have more classes (a stalled holder that holds
    other locks too)."""
    found = set(found)
    pairs, renamed = {}, []
    for cls in wanted:
        if cls in found:
            pairs[cls] = cls
            continue
        name = _global_name(cls)
        alike = [c for c in found if name is not None and _global_name(c) == name
                 and c not in pairs.values()]
        if len(alike) != 1:
            return None, []
        pairs[cls] = alike[0]
        renamed.append((cls, alike[0]))
    if len(set(pairs.values())) != len(pairs) or (not subset and set(pairs.values()) != found):
        return None, []
    return pairs, renamed


def match_one(finding, entry, version):
    """The Match of FINDING with ENTRY, or None."""
    if finding.kind != entry["kind"]:
        return None
    pairs, renamed = _pair_classes(entry["locks"], finding.classes(),
                                   subset=finding.kind == "stall")
    if pairs is None:
        return None
    compared = []
    for role, wanted_map, found_map in (("taken", entry.get("taken_in") or {}, finding.taken),
                                        ("waited", entry.get("waited_in") or {}, finding.waited)):
        for cls, wanted in sorted(wanted_map.items()):
            if wanted:
                found = sorted(found_map.get(pairs[cls], ()))
                compared.append((role, cls, list(wanted), found))
    blocked_in = entry.get("holder_waits_in") or []
    if blocked_in:
        compared.append(("blocked", "holder", list(blocked_in),
                         sorted(fn for _k, fn in finding.blocks if fn)))
    exact = all(set(found) & set(wanted) for _r, _c, wanted, found in compared)
    if renamed and not (exact and compared):
        # a variable of another file with the same name (VideoRoom's,
        # AudioBridge's and TextRoom's rooms_mutex) is that lock only when
        # the functions say so too
        return None
    return Match(entry, finding, EXACT if exact else LOCKS, in_range(entry, version), version,
                 compared, renamed)


def best_match(finding, entries, version):
    """The best Match of FINDING among ENTRIES (exact before locks, an
    affected version before an unaffected one, then catalogue order), or None."""
    best, best_rank = None, None
    for e in entries:
        m = match_one(finding, e, version)
        if m is None:
            continue
        rank = (0 if m.strength == EXACT else 1, {True: 0, None: 1, False: 2}[m.in_range])
        if best_rank is None or rank < best_rank:
            best, best_rank = m, rank
    return best


def attach(findings, version, entries=None):
    """Set ``known`` on each of FINDINGS to its best Match (or None); return
    the catalogue's problems (phrases), if any."""
    problems = []
    if entries is None:
        entries, problems = knownhangs.load()
    for f in findings:
        f.known = best_match(f, entries, version)
    return problems


def of_report(report, found=None):
    """REPORT's findings, fingerprinted and matched (computed once, kept on
    the report as ``report.findings``; FOUND: its ``verdict.causes`` when
    the caller has them); the catalogue's problems, if any, become warnings."""
    if report.findings is None:
        report.findings = fingerprint.findings(report, found)
        problems = attach(report.findings, report.target.get("janus_version"))
        for p in problems[:3]:
            report.warnings.append("known-hang catalogue: %s" % p)
    return report.findings
