"""Whether gdb's user reads UTF-8: the policy of report/textsafe for
non-ASCII text read from the target.

gdb knows the user's character set (``show host-charset``: "auto; currently
ANSI_X3.4-1968" under LANG=C, "auto; currently UTF-8" under C.UTF-8, or what
``set host-charset`` chose); the Python inside gdb cannot tell (it writes
UTF-8 whatever the locale).  ``apply()`` runs when a command, a printer or a
``bt`` annotation prints, never at import: the user may change the setting
between commands.  Not known to be UTF-8 (an unreadable setting, an unknown
name) counts as not UTF-8: an over-escaped name is better than raw bytes an
8-bit terminal takes for control characters.
"""

import re

import gdb  # pylint: disable=import-error

from ..report import textsafe

_SHOWN = re.compile(r'"(?:auto; currently )?([^";]+)"')


def host_charset():
    """gdb's host charset ("UTF-8", "ANSI_X3.4-1968", ...), or None.
    gdb.host_charset() is gdb 12's; older gdbs say it in `show host-charset`."""
    get = getattr(gdb, "host_charset", None)
    if get is not None:
        try:
            return str(get())
        except (gdb.error, RuntimeError):
            pass
    try:
        shown = gdb.execute("show host-charset", to_string=True)
    except (gdb.error, RuntimeError):
        return None
    m = _SHOWN.search(shown or "")
    return m.group(1).strip() if m else None


def apply():
    """Set textsafe's policy from gdb's host charset; returns whether UTF-8."""
    ok = textsafe.charset_is_utf8(host_charset())
    textsafe.set_utf8(ok)
    return ok
