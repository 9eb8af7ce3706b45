"""The user's own locale, as it was before Python changed it, for the gdb
the tool starts and for the tool's own output.

A Python 3.7+ started in the C or POSIX locale (LANG unset or LANG=C: a
fresh server, a cron job, ssh without locale forwarding) sets
``LC_CTYPE=C.UTF-8`` in its own environment at startup (PEP 538, "locale
coercion") and turns on its UTF-8 mode (PEP 540).  The gdb it starts would
inherit that LC_CTYPE and believe the terminal takes UTF-8, and print
non-ASCII names raw (report/textsafe.py) to a terminal that may read their
bytes 0x80-0x9f as C1 control characters.  ``child_env()`` undoes the
coercion for the child: the locale was C, so LC_CTYPE=C again.

Python leaves no record of having coerced; the signs used are its UTF-8
mode on (only a C/POSIX locale, PYTHONUTF8=1 or -X utf8 turn it on) with
LC_ALL unset and LC_CTYPE one of the names Python sets.  A user who set both
PYTHONUTF8=1 and LC_CTYPE=C.UTF-8 gets escaped names: over-escaping is the
safe mistake.
"""

import os
import sys

from ..report.textsafe import charset_is_utf8

# what CPython's locale coercion writes into LC_CTYPE (Python/pylifecycle.c)
COERCED = ("C.UTF-8", "C.utf8", "UTF-8")


def python_coerced(environ=None, utf8_mode=None):
    """Whether this Python set LC_CTYPE itself at startup (PEP 538)."""
    env = os.environ if environ is None else environ
    if utf8_mode is None:
        utf8_mode = getattr(sys.flags, "utf8_mode", 0)   # Python 3.7+
    return bool(utf8_mode) and not env.get("LC_ALL") and env.get("LC_CTYPE") in COERCED


def child_env(environ=None, utf8_mode=None):
    """A copy of the environment for a child process (gdb, the tool itself),
    with the user's LC_CTYPE restored when Python coerced it."""
    env = dict(os.environ if environ is None else environ)
    if python_coerced(env, utf8_mode):
        env["LC_CTYPE"] = "C"
    return env


def is_utf8(environ=None, utf8_mode=None):
    """Whether the user's locale (LC_ALL, else LC_CTYPE, else LANG, as the C
    library reads them; Python's coercion undone) names UTF-8.  Unset or
    unknown counts as not UTF-8."""
    env = child_env(environ, utf8_mode)
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(var)
        if value:
            codeset = value.split(".", 1)[1] if "." in value else ""
            return charset_is_utf8(codeset.split("@", 1)[0])
    return False
