"""`satchel backup` and `satchel restore`: a consistent copy of an embedded server's data, taken as it runs.

A backup is a folder: `satchel.db` (the whole SQLite database: users, tokens, stores, records with their small
bodies, datasets, request queues, runs), `blobs/` (the large bodies the copied database names), the
`admin-token` file when there is one, and `manifest.json`, written last, so a folder without it is a backup
that did not finish. The scale-out engines are backed up with their own tools (docs/deploy.md, "Backups").
"""
