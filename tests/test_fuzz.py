"""Mutated cores (tests/corefuzz.py): whatever the memory or the registers
say, janus-gdb answers with a report (maybe partial, with warnings) or one
clear line: never a traceback, an internal error, a hang or invalid JSON.

A bounded set of seeds runs here (about 40 gdb runs); scripts/fuzz-cores is
the long run (docs/fuzzing.md).  A seed names the same mutation relative to
the fixture's threads and ground truth, so a seed that once found a bug is
kept in REGRESSION and replayed on every run.
"""

import pytest

import corefuzz

CORES = ["pthread_cycle", "gmutex_cycle", "janus:rooms_pileup"]
SEEDS = range(4)
# (core, mode, seed) that found bugs in the long run, replayed here
REGRESSION = []

_parsed = {}


def fixture_core(name, scenarios, janus):
    """(exe, core path, ground truth, parsed Core) of fixture NAME."""
    if name.startswith("janus:"):
        scen = name.split(":", 1)[1]
        exe, path = janus.exes["gmutex"], janus.core(scen, "gmutex")
        truth = janus.get(scen, "gmutex").truth
    else:
        exe, path = scenarios.binaries.debug, scenarios.core(name)
        truth = scenarios.get(name).truth
    if path not in _parsed:
        _parsed[path] = corefuzz.Core(path)
    return exe, path, truth, _parsed[path]


def cases():
    out = [(c, m, s) for c in CORES for m in corefuzz.MODES for s in SEEDS]
    return out + [r for r in REGRESSION if r not in out]


@pytest.mark.parametrize("name,mode,seed", cases())
def test_mutant(scenarios, janus, tmp_path, name, mode, seed):
    exe, path, truth, core = fixture_core(name, scenarios, janus)
    patches = corefuzz.mutate(core, mode, seed, truth)
    assert patches or mode == "regs"
    out = corefuzz.fuzz_one(exe, path, patches, str(tmp_path), timeout=60)
    assert not list(tmp_path.iterdir()), "the mutant was not deleted"
    assert not out.bug, "%s: %s\n%s\n%s" % (out.kind, out.detail, out.stdout[-3000:],
                                            out.stderr[-2000:])
    assert out.kind in ("ok", "error")


def test_unmutated_cores_are_ok(scenarios, janus, tmp_path):
    """The classification itself: the original cores give full reports."""
    for name in CORES:
        exe, path, truth, core = fixture_core(name, scenarios, janus)
        out = corefuzz.run(exe, path)
        assert out.kind == "ok", (name, out.detail, out.stderr)


def test_mutations_are_deterministic_and_stay_in_memory(scenarios, janus):
    exe, path, truth, core = fixture_core("pthread_cycle", scenarios, janus)
    notes = [(o, o + n) for o, n in core.notes]
    regs = [(t.reg_offset, t.reg_offset + 27 * 8) for t in core.threads]
    mem = [(s.offset, s.offset + s.filesz) for s in core.segments]

    def inside(off, ranges):
        return any(a <= off < b for a, b in ranges)
    for mode in corefuzz.MODES:
        for seed in range(20):
            patches = corefuzz.mutate(core, mode, seed, truth)
            assert patches == corefuzz.mutate(core, mode, seed, truth)
            for off, data, label in patches:
                for i in range(len(data)):
                    if mode == "regs":
                        assert inside(off + i, regs), (mode, seed, label)
                    else:
                        assert inside(off + i, mem) and not inside(off + i, notes), label
    labels = [l for s in range(20) for _, _, l in corefuzz.mutate(core, "mem", s, truth)]
    assert any(l.startswith("stack:") for l in labels)
    assert any(l.startswith("lock:") for l in labels)
    assert any(l == "uniform" for l in labels)


def test_classify():
    js = corefuzz.JSON_BEGIN + "\n%s\n" + corefuzz.JSON_END + "\n"
    ok = "No deadlock found\n" + js % "{}" + "No lock is held or waited for.\n"
    assert corefuzz.classify(0, ok.encode(), b"").kind == "badjson"  # {} misses fields
    assert corefuzz.classify(0, (js % "{").encode(), b"").kind == "badjson"
    assert corefuzz.classify(0, b"", b"Traceback (most recent call last):\n").kind == \
        "traceback"
    assert corefuzz.classify(0, b"", b"Python Exception <class 'X'>: y\n").kind == "traceback"
    assert corefuzz.classify(1, b"", b"janus-waitgraph: internal error KeyError at a.py:3: 1"
                             ).kind == "internal"
    assert corefuzz.classify(1, b"", b"janus-waitgraph: cannot read the threads\n").kind == \
        "error"
    assert corefuzz.classify(-11, b"", b"").kind == "gdb-crash"
    assert corefuzz.classify(0, b"No deadlock found \x1b[31m\n", b"").kind == "unescaped"
