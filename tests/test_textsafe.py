"""Unit tests of report/textsafe.py's policy for non-ASCII text and of
cli/userlocale.py, which tells the command-line tool's gdb the user's own
locale.  The real-gdb side (gdb's host charset, the CLI started in the C
locale) is tests/test_bad_input.py::test_non_ascii_name_follows_gdb_host_charset
and ::test_cli_non_ascii_name_follows_the_users_locale."""

import os
import subprocess
import sys
import unicodedata

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.cli import userlocale  # noqa: E402
from janus_gdb.report import textsafe  # noqa: E402
from janus_gdb.report.textsafe import escape  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# every code point but the surrogates Python cannot decode bytes into
EVERY_CHAR = "".join(chr(c) for c in range(0x30000) if not 0xD800 <= c < 0xE000)


@pytest.fixture
def utf8_setting():
    """Restores textsafe's setting after the test."""
    old = textsafe.utf8()
    yield textsafe.set_utf8
    textsafe.set_utf8(old)


def test_default_escapes_every_non_ascii_character(utf8_setting):
    # before anyone says the terminal takes UTF-8: nothing but ASCII
    textsafe.set_utf8(False)
    assert not textsafe.utf8()
    assert escape("Zo\u00eb \u00db") == "Zo\\u00eb \\u00db"
    assert escape(b"Zo\xc3\xab \xc3\x9b") == "Zo\\u00eb \\u00db"   # Û is C3 9B
    assert escape("caf\xe9 \xa0 \u00ad \U0001f600") == "caf\\u00e9 \\u00a0 \\u00ad \\U0001f600"
    # controls and undecodable bytes as before
    assert escape(b"\xff\xc2\x9b31m\x1b") == "\\xff\\x9b31m\\x1b"
    assert escape("\u202eevil\u2066") == "\\u202eevil\\u2066"
    out = escape(EVERY_CHAR, len(EVERY_CHAR) * 10)
    assert max(map(ord, out)) < 0x80
    assert out.encode("ascii").decode("ascii") == out


def test_utf8_keeps_printable_non_ascii_only(utf8_setting):
    assert textsafe.set_utf8(True) is False   # returns the previous setting
    assert textsafe.utf8()
    assert escape("Zo\u00eb \u00db") == "Zo\u00eb \u00db"
    assert escape(b"Zo\xc3\xab \xc3\x9b\x9b") == "Zo\u00eb \u00db\\x9b"   # a lone 0x9b byte
    assert escape("\u202eevil\u2066 \u2028 \u00ad \ud800") == \
        "\\u202eevil\\u2066 \\u2028 \\u00ad \\ud800"
    assert escape("\x9b\x85") == "\\x9b\\x85"                       # C1 controls
    assert escape("\U000e0001") == "\\U000e0001"                    # a format character > U+FFFF
    out = escape(EVERY_CHAR, len(EVERY_CHAR) * 10)
    out.encode("utf-8")    # no lone surrogate left
    for ch in out:
        code = ord(ch)
        assert code >= 0x20 and not 0x7F <= code < 0xA0, hex(code)
        assert unicodedata.category(ch) not in ("Cf", "Cs", "Zl", "Zp"), hex(code)
    # the cut counts characters either way
    assert escape("\u00e9" * 10, 4) == "\u00e9" * 4 + "..."
    textsafe.set_utf8(False)
    assert escape("\u00e9" * 10, 4) == "\\u00e9" * 4 + "..."


@pytest.mark.parametrize("env,utf8_mode,coerced,utf8", [
    # what Python 3.7+ leaves when started with LANG=C or no locale at all
    ({"LC_CTYPE": "C.UTF-8"}, 1, True, False),
    ({"LANG": "C", "LC_CTYPE": "C.UTF-8"}, 1, True, False),
    ({"LANG": "POSIX", "LC_CTYPE": "C.utf8"}, 1, True, False),
    # LC_CTYPE=C with a UTF-8 LANG: coerced too, the user's LC_CTYPE wins
    ({"LANG": "en_US.UTF-8", "LC_CTYPE": "C.UTF-8"}, 1, True, False),
    # the user's own settings
    ({"LC_CTYPE": "C.UTF-8"}, 0, False, True),
    ({"LANG": "C.UTF-8"}, 0, False, True),
    ({"LANG": "de_DE.utf8"}, 0, False, True),
    ({"LANG": "en_US.UTF-8@euro"}, 0, False, True),
    ({"LANG": "de_DE@euro"}, 0, False, False),
    ({"LANG": "en_US.ISO-8859-1"}, 0, False, False),
    ({"LANG": "en_US"}, 0, False, False),
    ({}, 0, False, False),
    ({"LC_ALL": "C", "LANG": "C.UTF-8"}, 1, False, False),
    ({"LC_ALL": "C.UTF-8", "LANG": "C"}, 0, False, True),
    ({"LC_CTYPE": "en_GB.ISO-8859-15", "LANG": "en_GB.UTF-8"}, 0, False, False),
])
def test_user_locale(env, utf8_mode, coerced, utf8):
    assert userlocale.python_coerced(env, utf8_mode) == coerced
    child = userlocale.child_env(env, utf8_mode)
    assert child.get("LC_CTYPE") == ("C" if coerced else env.get("LC_CTYPE"))
    assert dict((k, v) for k, v in child.items() if k != "LC_CTYPE") == \
        dict((k, v) for k, v in env.items() if k != "LC_CTYPE")
    assert userlocale.is_utf8(env, utf8_mode) == utf8


@pytest.mark.parametrize("lang,utf8", [("C", False), (None, False), ("C.UTF-8", True)])
def test_user_locale_of_a_real_python(lang, utf8):
    """This Python started as a user would start the tool: what it sees of
    the user's locale after its own start-up (locale coercion on 3.7+)."""
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith("LC_") and k not in ("LANG", "PYTHONUTF8",
                                                        "PYTHONCOERCECLOCALE"))
    if lang is not None:
        env["LANG"] = lang
    code = ("from janus_gdb.cli import userlocale as u; import os; "
            "print(u.is_utf8(), u.child_env().get('LC_CTYPE'), os.environ.get('LC_CTYPE'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=60,
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    is_utf8, child_ctype, own_ctype = out.split()
    assert is_utf8 == str(utf8), out
    if not utf8:
        # whatever Python made of its own LC_CTYPE, the children get C (or nothing)
        assert child_ctype in ("C", "None"), out
