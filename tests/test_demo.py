"""The README's first command, `bash demo/run`, shows what the README says it
shows: the demo's deadlock found, named as janus-gateway #3510 because the
demo plays an affected release (its janus_version_string, issue 15), with
the same fingerprint live, from a core and with pthread mutexes."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "demo", "run")


def run_demo(*args):
    out = subprocess.run(["bash", DEMO] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    return out.stdout


def readme_example():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    block = text.split("(gdb) janus-waitgraph\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


@pytest.mark.parametrize("args", [(), ("--core",), ("--pthread",)])
def test_demo_is_issue_3510(args):
    lines = run_demo(*args).splitlines()
    assert lines[0].startswith("Found 1 deadlock (2 threads), 6 threads blocked behind it."), lines
    assert "Janus 1.3.0" in lines[0], lines[0]
    assert lines[1].startswith("This is janus-gateway #3510 (VideoRoom PLI vs Admin handle_info; "
                               "affects "), lines[1]
    assert lines[2].startswith("  [match cycle-") and ": exact: " in lines[2], lines[2]
    assert re.match(r"^Fingerprint: cycle-[0-9a-f]{10} \(deadlock #1\)$", lines[3]), lines[3]
    # what the README shows is what the demo prints (up to the pid, LWPs, addresses)
    readme = readme_example()
    assert readme[1] == lines[1], (readme[1], lines[1])
    assert readme[3] == lines[3], (readme[3], lines[3])
