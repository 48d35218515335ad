"""The rules of Satchel, between the HTTP layer and storage; nothing here knows of requests or SQL.

Each module is imported by itself: this package's own import loads nothing, so a command that needs one rule
(a key check, the token file's name) starts without the whole server.
"""
