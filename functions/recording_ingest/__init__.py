"""recording_ingest bounded context."""
