"""report bounded context."""
