"""voice_webhook bounded context."""
