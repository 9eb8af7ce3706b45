"""What janus-gdb knows about Janus: its objects, names and lock-debug log."""
