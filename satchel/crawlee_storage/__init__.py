"""Crawlee's local storage folders, in and out: how a team moves what its crawlers kept on disk into Satchel.

Crawlee keeps each key-value store as a folder under `key_value_stores/`. Crawlee for Python names a record's
file by its percent-encoded key (`urllib.parse.quote(key, safe="")`) and keeps `{file}.__metadata__.json`
beside it (`key`, `content_type`); Crawlee for JavaScript names it `{key}.{extension}` and may keep
`{key}.__metadata__.json` (`key`, `contentType`, `extension`). Both layouts are read.

Exports use Crawlee for Python's layout, with `contentType` in the metadata, which it reads. That layout
cannot name every key: `__metadata__.json` is the store's own file, a key ending in `.__metadata__.json` names
another record's metadata file (and Crawlee takes it for one), and a key whose encoded name is longer than a
file name may be (255 bytes, with the metadata file's suffix) cannot be written at all. Such a record goes in
under Satchel's own names, `~{sha256 of the key}` with `~{...}.__satchel__.json` beside it: `~` is in no
file name Crawlee gives a key, so the two never meet, and Crawlee for Python does not see the record (it
lists only `*.__metadata__.json`) rather than fail on it. Satchel's import reads both, so an export imports
back to the same keys, bytes and content types.

A folder to import is someone else's: only regular files directly inside it are read, each opened without
following links (O_NOFOLLOW, then fstat) and without waiting on a FIFO, no larger than max_record_bytes, and a
name from a metadata file is used only if the folder lists a regular file by that name. An export writes
only files it creates (O_CREAT | O_EXCL | O_NOFOLLOW), through no link, into a partial folder of its own
beside the store folder, renamed to it (over nothing or an empty folder) once whole; if it fails, it removes
the partial folder, and if it is killed, the next export of that store there does (exporting.py).
"""
