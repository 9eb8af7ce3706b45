"""The command-line tool (``python3 -m janus_gdb``) and the watchdog."""
