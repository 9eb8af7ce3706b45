"""Analyses of the target's C/C++ source files."""
