"""Reading the target: gdb access, core files, system calls, lock layouts, machine code."""
