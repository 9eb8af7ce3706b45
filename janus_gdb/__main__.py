"""``python3 -m janus_gdb``: the janus-gdb command-line tool (see cli.py)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
