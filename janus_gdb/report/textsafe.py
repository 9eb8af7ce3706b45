"""Make strings read from the target safe to print.

Thread names, symbols and (later) Janus display names come from memory that
remote clients may have written: escape control characters (terminal escape
sequences, BEL, NUL), Unicode format characters (bidi overrides such as
U+202E, which reorder what a terminal shows) and cut long strings.
"""

import unicodedata

MAX_LEN = 120


def escape(text, limit=MAX_LEN):
    """Printable form of TEXT: control characters as \\xNN, cut to LIMIT chars."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # undecodable byte (surrogateescape)
            out.append("\\x%02x" % (code - 0xDC00))
        elif (code < 0x20 or 0x7F <= code < 0xA0 or ch in "\u2028\u2029"
              or (code >= 0xA0 and unicodedata.category(ch) == "Cf")):
            out.append("\\x%02x" % code if code < 0x100 else "\\u%04x" % code)
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
        if len(out) > limit:
            return "".join(out[:limit]) + "..."
    return "".join(out)
