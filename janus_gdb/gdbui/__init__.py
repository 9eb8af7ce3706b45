"""The gdb-facing glue: commands, bt annotations, pretty-printers, batch runs."""
