"""The Janus version of the target (issue 15, point 2): janus_gdb/janus/version.py.

The truth comes from outside the module under test:
- Janus's own builds: the release in the build's configure.ac (AC_INIT and
  JANUS_VERSION), and for a running Janus its API's `info` answer
  (`version`, `version_string`); Debian's package: its package version;
- the fixture janus_version.c (+ janus_version_vars.c, Janus's version.c):
  the version the test compiles in, which the program also prints from its
  own variables (and replaces at run time when asked: the core's memory
  then differs from the executable, and the report must give the memory's).

Every executable is read with and without its symbols (strip --strip-all
copies, and the scan forced with symbols=False): the scan must find the
same release or nothing; a file that is not Janus, garbage or truncated
gives None (never an exception, never a wrong version).
"""

import os
import ast
import glob
import random
import re
import shutil
import subprocess

import pytest

import gdbrun
import janusd
from janus_gdb.janus import version

SCAN = "the executable's data (not its symbols)"

# the fixture builds: name -> (gcc flags, (text, number) compiled in, or None)
BUILDS = {
    "pie": (["-fPIE", "-pie"], ("1.3.0", 1300)),
    "nopie": (["-fno-pie", "-no-pie"], ("0.10.10", 110)),
    "none": (["-fPIE", "-pie", "-DNO_VERSION"], None),
}


def cc_version_flags(expected):
    if expected is None:
        return []
    text, number = expected
    return ["-DJV_NUMBER=%d" % number, '-DJV_STRING="%s"' % text]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """{name: path} of the fixture builds (-g) and their stripped copies
    (name + "-stripped")."""
    if not gdbrun.have("gcc") or not gdbrun.have("strip"):
        pytest.skip("gcc or strip is not installed")
    d = str(tmp_path_factory.mktemp("janus-version"))
    out = {}
    for name, (flags, expected) in BUILDS.items():
        exe = os.path.join(d, "jv_" + name)
        subprocess.run(["gcc", "-g", "-O2", "-Wall", "-pthread", "-o", exe,
                        os.path.join(gdbrun.FIXTURES, "janus_version.c"),
                        os.path.join(gdbrun.FIXTURES, "janus_version_vars.c")]
                       + flags + cc_version_flags(expected), check=True)
        out[name] = exe
        out[name + "-stripped"] = strip(exe, exe + ".stripped")
    return out


def strip(src, dst):
    subprocess.run(["strip", "--strip-all", "-o", dst, src], check=True)
    return dst


def expected_of(name):
    return BUILDS[name.replace("-stripped", "")][1]


def as_pair(v):
    return None if v is None else (v.text, v.number)


# ---------------------------------------------------------------------------
# Pure logic: release numbers and ranges
# ---------------------------------------------------------------------------

def test_parse_and_compare():
    assert version.parse("1.1.2") == (1, 1, 2)
    assert version.parse("v1.4.1") == (1, 4, 1)
    for bad in ("1.1", "1.1.2-rc1", "", None, "a.b.c", " 1.1.2", "1.1.2\n", 1102):
        assert version.parse(bad) is None, bad
    assert version.compare("1.3.0", "1.3.1") == -1
    assert version.compare("1.10.0", "1.9.9") == 1     # numbers, not strings
    assert version.compare((1, 1, 2), "1.1.2") == 0
    assert version.compare("1.1.2", None) is None
    v = version.JanusVersion("1.3.0", 1300, "test")
    assert version.in_range(v, "1.3.0", "1.3.0") is True
    assert version.in_range(v, None, "1.2.4") is False
    assert version.in_range(v, "1.3.1", None) is False
    assert version.in_range(v, None, None) is True
    assert version.in_range(version.JanusVersion("custom", None, "x"), None, "2.0.0") is None
    assert version.in_range(None, "1.0.0", "2.0.0") is None
    assert version.in_range(v.to_dict(), "1.2.0", "1.3.0") is True     # the report's dict
    assert version.in_range({"text": "1.3.1"}, "1.2.0", "1.3.0") is False
    d = v.to_dict()
    assert d == {"text": "1.3.0", "number": 1300, "how": "test"}
    assert as_pair(version.JanusVersion.from_dict(d)) == ("1.3.0", 1300)
    assert version.JanusVersion.from_dict(None) is None


def configure_versions(srcdir):
    """{release: JANUS_VERSION} of the configure.ac of SRCDIR."""
    with open(os.path.join(srcdir, "configure.ac"), errors="replace") as f:
        text = f.read(8192)
    ac = re.search(r"AC_INIT\(\[[^]]*\],\s*\[([^]]+)\]", text).group(1)
    number = int(re.search(r"^JANUS_VERSION=(\d+)$", text, re.M).group(1))
    string = re.search(r'^JANUS_VERSION_STRING="([^"]+)"$', text, re.M).group(1)
    assert string == ac
    return ac, number


def janus_build(v):
    prefix = janusd.default_prefix(v)
    exe = os.path.join(prefix, "bin", "janus")
    if not os.path.exists(exe) or not os.path.exists(prefix + ".src"):
        pytest.skip("no Janus %s build at %s (JANUS_PREFIX / scripts/build-janus)" % (v, prefix))
    if janusd.source_version(prefix) != v:
        pytest.skip("the build at %s is not Janus %s" % (prefix, v))
    return prefix, exe


@pytest.mark.parametrize("v", janusd.VERSIONS)
def test_numbering_rule_of_the_real_builds(v):
    """number_of is configure.ac's rule (checked on both builds' sources)."""
    prefix, _exe = janus_build(v)
    text, number = configure_versions(prefix + ".src")
    assert version.number_of(version.parse(text)) == number


# ---------------------------------------------------------------------------
# from_file: real Janus executables, with and without symbols
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("v", janusd.VERSIONS)
def test_janus_debug_build(v, tmp_path):
    prefix, exe = janus_build(v)
    truth = configure_versions(prefix + ".src")
    got = version.from_file(exe)
    assert as_pair(got) == truth
    assert got.parts == version.parse(truth[0])
    assert "symbol table" in got.how, got.how
    scanned = version.from_file(exe, symbols=False)
    assert as_pair(scanned) == truth and scanned.how.startswith(SCAN), scanned
    assert scanned.how.endswith("(and to a build time and a git SHA, as in Janus's "
                                "version.c)"), scanned.how
    # strip --strip-all: .symtab gone (janus exports the variables for its
    # plugins: .dynsym may still name them); the scan alone agrees
    stripped = strip(exe, str(tmp_path / "janus.stripped"))
    assert "janus_version_string" not in subprocess.run(
        ["nm", stripped], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        universal_newlines=True).stdout
    got = version.from_file(stripped)
    assert as_pair(got) == truth
    assert "symbol table" not in got.how
    assert as_pair(version.from_file(stripped, symbols=False)) == truth


def test_debian_package_binary():
    pkg, problem = janusd.debian_janus()
    if problem:
        pytest.skip(problem)
    m = re.match(r"(?:\d+:)?(\d+\.\d+\.\d+)", pkg["version"])
    assert m, pkg["version"]
    text = m.group(1)
    for symbols in (True, False):
        got = version.from_file(pkg["exe"], symbols=symbols)
        assert got is not None and got.text == text, (symbols, got)
        assert got.number == version.number_of(version.parse(text))
    assert version.from_file(pkg["exe"], symbols=False).how.startswith(SCAN)


@pytest.mark.parametrize("path", ["/bin/ls", "/bin/sh"])
def test_not_janus(path):
    if not os.path.exists(path):
        pytest.skip("no %s" % path)
    assert version.from_file(path) is None
    assert version.from_file(path, symbols=False) is None


def test_no_false_match_on_the_systems_programs():
    """Every executable in /usr/bin: a version is found only in Janus's own
    (dpkg says which package a file is from), with symbols or by the scan."""
    files = sorted(p for p in glob.glob("/usr/bin/*")
                   if os.path.isfile(p) and not os.path.islink(p))[:1500]
    assert len(files) > 50
    found = {}
    for path in files:
        for symbols in (True, False):
            got = version.from_file(path, symbols=symbols)
            if got is not None:
                found.setdefault(path, set()).add(as_pair(got))
    for path, got in found.items():
        assert len(got) == 1, (path, got)
        if not gdbrun.have("dpkg-query"):
            assert os.path.basename(path).startswith("janus"), (path, got)
            continue
        owner = subprocess.run(["dpkg-query", "-S", path], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, universal_newlines=True).stdout
        assert owner.split(":")[0] == janusd.DEBIAN_PACKAGE, (path, got, owner)


# ---------------------------------------------------------------------------
# from_file: the fixture builds
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(n + s for n in BUILDS for s in ("", "-stripped")))
def test_fixture_builds(builds, name):
    expected = expected_of(name)
    got = version.from_file(builds[name])
    assert as_pair(got) == expected
    if got is not None:
        if name.endswith("-stripped"):
            assert got.how.startswith(SCAN), got.how
        else:
            assert "symbol table" in got.how, got.how
    # the scan alone: the same release (the decoy "9.8.7" and libnice's
    # "0.1.21" are pointed to from data too, with no number beside them)
    assert as_pair(version.from_file(builds[name], symbols=False)) == expected


def test_a_lone_string_is_not_a_version(builds, tmp_path):
    """The number zeroed in the file: the string alone is not taken."""
    exe = builds["pie-stripped"]
    _text, number = expected_of("pie")
    with open(exe, "rb") as f:
        data = bytearray(f.read())
    needle = number.to_bytes(4, "little")
    hits = [m.start() for m in re.finditer(re.escape(bytes(needle)), bytes(data))]
    assert hits
    for at in hits:
        data[at:at + 4] = b"\0\0\0\0"
    p = tmp_path / "zeroed"
    p.write_bytes(bytes(data))
    assert version.from_file(str(p)) is None
    assert version.from_file(str(p), symbols=False) is None


def _write(path, data):
    path.write_bytes(bytes(data))
    return path


def relative_slots(path):
    """{slot address: file offset} of the RELATIVE relocations of PATH, as
    readelf lists them and its section headers map them."""
    relocs = subprocess.run(["readelf", "-rW", path], stdout=subprocess.PIPE,
                            universal_newlines=True, check=True).stdout
    secs = subprocess.run(["readelf", "-SW", path], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True).stdout
    ranges = []
    for m in re.finditer(r"\]\s+(\S+)\s+(PROGBITS|INIT_ARRAY|FINI_ARRAY|DYNAMIC)\s+"
                         r"([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", secs):
        ranges.append((int(m.group(3), 16), int(m.group(4), 16), int(m.group(5), 16)))
    out = {}
    for m in re.finditer(r"^([0-9a-f]+)\s+[0-9a-f]+\s+R_(?:X86_64|AARCH64)_RELATIVE\b",
                         relocs, re.M):
        slot = int(m.group(1), 16)
        for addr, off, size in ranges:
            if addr and addr <= slot < addr + size:
                out[slot] = off + slot - addr
    return out


def symbol_address(path, name):
    nm = subprocess.run(["nm", path], stdout=subprocess.PIPE, universal_newlines=True).stdout
    m = re.search(r"^([0-9a-f]+) \w %s$" % name, nm, re.M)
    return int(m.group(1), 16) if m else None


@pytest.mark.parametrize("which", ["fixture", "janus"])
def test_pie_slots_left_zero(builds, tmp_path, which):
    """A PIE whose pointer slots hold 0 until the loader applies their
    RELATIVE relocations (as lld writes them; GNU ld also stores the
    addend): the version comes from the relocations."""
    if which == "fixture":
        exe, truth = builds["pie"], expected_of("pie")
    else:
        prefix, exe = janus_build("1.1.2")
        truth = configure_versions(prefix + ".src")
    slots = relative_slots(exe)
    assert symbol_address(exe, "janus_version_string") in slots
    stripped = strip(exe, str(tmp_path / "stripped"))
    slots = relative_slots(stripped)
    with open(stripped, "rb") as f:
        data = bytearray(f.read())
    for off in slots.values():
        data[off:off + 8] = bytes(8)
    p = _write(tmp_path / "zeroed", data)
    got = version.from_file(str(p), symbols=False)
    assert as_pair(got) == truth


def test_aarch64_build(tmp_path):
    """The fixture cross-compiled for aarch64 (a PIE: R_AARCH64_RELATIVE)."""
    cc = "aarch64-linux-gnu-gcc"
    if not gdbrun.have(cc) or not gdbrun.have("aarch64-linux-gnu-strip"):
        pytest.skip("%s is not installed" % cc)
    expected = ("1.2.4", 1204)
    exe = str(tmp_path / "jv_a64")
    subprocess.run([cc, "-g", "-O2", "-pthread", "-fPIE", "-pie", "-o", exe,
                    os.path.join(gdbrun.FIXTURES, "janus_version.c"),
                    os.path.join(gdbrun.FIXTURES, "janus_version_vars.c")]
                   + cc_version_flags(expected), check=True)
    stripped = exe + ".stripped"
    subprocess.run(["aarch64-linux-gnu-strip", "-o", stripped, exe], check=True)
    assert as_pair(version.from_file(exe)) == expected
    assert as_pair(version.from_file(stripped)) == expected
    with open(stripped, "rb") as f:
        data = bytearray(f.read())
    for off in relative_slots(stripped).values():
        data[off:off + 8] = bytes(8)
    assert as_pair(version.from_file(str(_write(tmp_path / "zeroed", data)))) == expected


def test_garbage_and_truncated_files(builds, tmp_path):
    """Never an exception, never a wrong version."""
    exe = builds["pie-stripped"]
    truth = expected_of("pie")
    with open(exe, "rb") as f:
        data = f.read()
    cases = [b"", b"\x7fELF", data[:64], data[:200], b"\0" * 4096,
             b"\x7fELF\x02\x01\x01" + b"\xff" * 5000]
    rnd = random.Random(15)
    cases += [data[:rnd.randrange(64, len(data))] for _ in range(20)]
    for _ in range(40):
        mutated = bytearray(data)
        for _ in range(rnd.randrange(1, 40)):
            k = rnd.randrange(0x1000 if rnd.random() < 0.5 else len(mutated))
            mutated[k] = rnd.randrange(256)
        cases.append(bytes(mutated))
    p = str(tmp_path / "bad")
    for i, case in enumerate(cases):
        with open(p, "wb") as f:
            f.write(case)
        got = version.from_file(p)
        assert got is None or as_pair(got) == truth, (i, got)
        if i < 6:
            assert got is None, i
    assert version.from_file(str(tmp_path)) is None          # a directory
    assert version.from_file(str(tmp_path / "missing")) is None


# ---------------------------------------------------------------------------
# In gdb: janus-waitgraph on the fixture, live and from a core
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def running(builds, tmp_path_factory):
    """{name: (Scenario, core path)} of every build, hung, with a core."""
    d = str(tmp_path_factory.mktemp("janus-version-cores"))
    out = {}
    try:
        for name, exe in sorted(builds.items()):
            sc = gdbrun.Scenario(exe, [])
            out[name] = (sc, sc.gcore(os.path.join(d, "core." + name)))
        yield out
    finally:
        gdbrun.close_fixtures([sc for sc, _ in out.values()], [c for _, c in out.values()])


def truth_version(sc):
    info = sc.truth.info["janus_version"]
    return None if info == ["none"] else (info[1], int(info[0]))


def analyse(sc, core, mode, command, exe):
    if mode == "live":
        res = gdbrun.gdb([command], pid=sc.pid)
    else:
        res = gdbrun.gdb([command], exe=exe, core=core)
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    return res.stdout


@pytest.mark.parametrize("mode", ["live", "core"])
@pytest.mark.parametrize("name", sorted(n + s for n in BUILDS for s in ("", "-stripped")))
def test_report_shows_the_version(builds, running, name, mode):
    sc, core = running[name]
    truth = truth_version(sc)
    assert truth == expected_of(name)       # the program agrees with what was compiled in
    out = analyse(sc, core, mode, "janus-waitgraph --format json", builds[name])
    target = gdbrun.extract_json(out)["target"]
    assert "janus_version" in target
    got = target["janus_version"]
    if truth is None:
        assert got is None
    else:
        assert (got["text"], got["number"]) == truth
        if name.endswith("-stripped"):
            # no symbol anywhere: the executable's data
            assert got["how"].startswith(SCAN), got["how"]
        else:
            where = "core's" if mode == "core" else "process's"
            assert got["how"].startswith("janus_version_string in the %s memory" % where), got
    text = gdbrun.extract_report(analyse(sc, core, mode, "janus-waitgraph", builds[name]))
    first = text.splitlines()[0]
    if truth is None:
        assert "Janus " not in first
    else:
        assert ", Janus %s, " % truth[0] in first, first


def test_runtime_value_from_memory(builds, tmp_path):
    """A process whose variables changed at run time: with symbols the
    report gives its memory's value (live and core), not the file's."""
    runtime = ("4.5.6", 4506)
    exe = builds["pie"]
    sc = gdbrun.Scenario("/usr/bin/env", ["JV_RUNTIME_STRING=%s" % runtime[0],
                                          "JV_RUNTIME_NUMBER=%d" % runtime[1], exe])
    core = str(tmp_path / "core.runtime")
    try:
        assert truth_version(sc) == runtime
        sc.gcore(core)
        assert as_pair(version.from_file(exe)) == expected_of("pie")     # the file's
        for mode in ("live", "core"):
            got = gdbrun.extract_json(analyse(sc, core, mode, "janus-waitgraph --format json",
                                              exe))["target"]["janus_version"]
            assert (got["text"], got["number"]) == runtime, (mode, got)
    finally:
        gdbrun.close_fixtures([sc], [core])


def test_live_executable_replaced_since(builds, tmp_path):
    """A process without symbols whose executable was replaced at its path
    (a package upgrade) or removed: the version of the file it runs."""
    exe = str(tmp_path / "janus")
    shutil.copy(builds["pie-stripped"], exe)
    sc = gdbrun.Scenario(exe, [])
    try:
        running = truth_version(sc)
        assert running == expected_of("pie")
        # replaced as dpkg does it: a new file renamed over the old path
        shutil.copy(builds["nopie-stripped"], exe + ".new")
        os.rename(exe + ".new", exe)
        assert as_pair(version.from_file(exe)) == expected_of("nopie")
        got = gdbrun.extract_json(analyse(sc, None, "live", "janus-waitgraph --format json",
                                          None))["target"]["janus_version"]
        assert (got["text"], got["number"]) == running, got
        os.unlink(exe)
        got = gdbrun.extract_json(analyse(sc, None, "live", "janus-waitgraph --format json",
                                          None))["target"]["janus_version"]
        assert (got["text"], got["number"]) == running, got
    finally:
        sc.kill()


# ---------------------------------------------------------------------------
# A real Janus: its API's own answer is the truth
# ---------------------------------------------------------------------------

PRINT = ("python from janus_gdb.janus import version as _v; _x = _v.from_target(); "
         "print('JV=%r' % (None if _x is None else (_x.text, _x.number, _x.how),))")


def printed(out):
    m = re.search(r"^JV=(.*)$", out, re.M)
    assert m, out
    return ast.literal_eval(m.group(1))


def test_real_janus_core(tmp_path):
    prefix, problem = janusd.usable_prefix(("gdb",), need_pexpect=False)
    if problem:
        pytest.skip(problem)
    j = janusd.JanusServer(prefix, str(tmp_path))
    core = str(tmp_path / "core.janus")
    try:
        info = j.start()
        truth = (info["version_string"], info["version"])
        janusd.gcore_all_stop(j, core)
        res = gdbrun.gdb([PRINT], exe=j.exe, core=core)
        got = printed(res.stdout)
        assert got[:2] == truth, (got, res.stderr[-2000:])
        assert got[2].startswith("janus_version_string in the core's memory")
        # the core with a stripped copy of the executable: the file's data
        stripped = strip(j.exe, str(tmp_path / "janus.stripped"))
        res = gdbrun.gdb([PRINT], exe=stripped, core=core, hide_debug=True)
        got = printed(res.stdout)
        assert got[:2] == truth, (got, res.stderr[-2000:])
    finally:
        j.stop()
        if os.path.exists(core):
            os.unlink(core)


def test_debian_package_live(tmp_path):
    """Debian's stripped /usr/bin/janus, attached: its exported symbols
    (.dynsym) read in the process's memory, no debug info."""
    pkg, problem = janusd.debian_janus()
    if problem or not shutil.which("gdb"):
        pytest.skip(problem or "gdb is not installed")
    j = janusd.DebianJanus(pkg, str(tmp_path))
    try:
        info = j.start()
        truth = (info["version_string"], info["version"])
        res = gdbrun.gdb([PRINT], pid=j.pid, hide_debug=True)
        got = printed(res.stdout)
        assert got[:2] == truth, (got, res.stderr[-2000:])
        assert got[2].startswith("janus_version_string in the process's memory")
    finally:
        j.stop()
