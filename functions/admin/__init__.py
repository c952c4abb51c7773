"""admin bounded context."""
