"""dni_lease bounded context."""
