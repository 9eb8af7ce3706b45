"""Analyses of C/C++ source files, without gdb: the lock set a function
holds at a line (locksets), and the whole-program lock analysis
(lockorder: lock classes, lock-order cycles, missing unlocks)."""
