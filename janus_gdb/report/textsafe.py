"""Make strings read from the target safe to print.

Thread names, symbols and (later) Janus display names come from memory that
remote clients may have written: escape control characters (terminal escape
sequences, BEL, NUL), Unicode format characters (bidi overrides such as
U+202E, which reorder what a terminal shows) and cut long strings.

Printable non-ASCII characters (a display name "Zoë") are kept only when the
user's terminal takes UTF-8: their UTF-8 bytes can contain 0x80-0x9f ("Û" is
C3 9B), which an 8-bit terminal (Latin-1 with C1 controls) reads as control
characters (0x9b is CSI, the start of an escape sequence).  Whoever prints
says what the terminal takes with ``set_utf8``, at run time (gdbui/charset.py
from gdb's host charset, the command-line tool from the user's locale);
until then every non-ASCII character is escaped as ``\\uXXXX``: a name shown
escaped costs less than an escape sequence on a support engineer's screen.
"""

import unicodedata

MAX_LEN = 120

# whether printable non-ASCII characters may be printed as they are (set_utf8)
_UTF8 = [False]


def set_utf8(ok):
    """Say whether the output goes to a UTF-8 terminal (OK true): printable
    non-ASCII characters are then kept; otherwise every non-ASCII character
    is escaped.  Returns the previous setting."""
    old = _UTF8[0]
    _UTF8[0] = bool(ok)
    return old


def utf8():
    """Whether printable non-ASCII characters are kept (set_utf8)."""
    return _UTF8[0]


def charset_is_utf8(name):
    """Whether the character set NAME is UTF-8, however spelled ("UTF-8",
    "utf8", "UTF_8"): gdb's host charset, a locale's codeset."""
    return bool(name) and name.replace("-", "").replace("_", "").upper() == "UTF8"


def escape(text, limit=MAX_LEN):
    """Printable form of TEXT: control characters as \\xNN, Unicode format
    characters and surrogates (and, unless set_utf8(True), every non-ASCII
    character) as \\uXXXX, cut to LIMIT chars."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    keep_unicode = _UTF8[0]
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # undecodable byte (surrogateescape)
            out.append("\\x%02x" % (code - 0xDC00))
        elif (code < 0x20 or 0x7F <= code < 0xA0 or ch in "\u2028\u2029"
              or (code >= 0xA0 and (not keep_unicode
                                    or unicodedata.category(ch) in ("Cf", "Cs")))):
            # \xNN is an undecodable byte or a C0/C1 control; the rest \uXXXX
            out.append("\\x%02x" % code if code < 0xA0 else
                       "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code)
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
        if len(out) > limit:
            return "".join(out[:limit]) + "..."
    return "".join(out)
