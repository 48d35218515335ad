"""The web Console, a client of service/ as the API is: browse, upload, share and manage stores."""

from satchel.console.app import Console

__all__ = ["Console"]
