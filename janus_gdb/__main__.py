"""``python3 -m janus_gdb``: the janus-gdb command-line tool (see cli/main.py)."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
