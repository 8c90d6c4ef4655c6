"""Benchmarks: each prints figures and ends with ONE line of JSON (keys in its docstring)."""
