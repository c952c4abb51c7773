"""voice_webhook bounded context: answering Twilio for a call and keeping its record — the
webhook, its outbox's replay after a storage outage, and the hourly redrive of that outbox's dead
letters."""
