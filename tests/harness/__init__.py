"""What the tests share, one helper per job: the server (server.py), the CLI (cli.py), the API's envelopes
(envelope.py), the hostile-input client and rule (hostile.py, hostile_storages.py), the crash, concurrency
and resource harnesses parametrised by engine (rigs.py knows how to run a server over each engine and check
its files; crash.py, concurrency.py, disk.py drive load through the HTTP API only, so a new engine inherits
them by adding a rig), the engines' backends (backends.py, postgres.py, seaweed.py), the in-process tier
(inprocess.py), and the figures printed after a run (summaries.py).
"""
