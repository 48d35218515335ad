"""Reusable harnesses for the crash, concurrency and resource suites, parametrised by storage engine.

`rigs.py` knows how to run a server over each engine and how to check that engine's files; the other
modules drive load through the HTTP API only, so a new engine inherits them by adding a rig.
"""
