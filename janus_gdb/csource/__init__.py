"""C source analyses that need no gdb: the whole-program lock analysis
(lockorder: lock classes, lock-order cycles, missing unlocks)."""
