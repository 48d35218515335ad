"""Blob stores: where bodies too large to keep inline live (local files or S3)."""
