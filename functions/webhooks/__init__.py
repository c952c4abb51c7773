"""webhooks: data out. What leaves calltrack per call and per ops alert, and how it gets there.

Signed outbound webhooks (call.started, call.completed, call.updated, recording.ready, alert.*,
review.monthly), the CRM push to kintone and HubSpot, and the delivery machinery they share: a
delivery row per (event, destination), at-least-once sends through SQS with exponential backoff
for 24 hours then the dead-letter queue (whose hourly sweep fails the rows of deliveries
dead-lettered before their last try ran), the SSRF guard, and the routes that list, retry and test
deliveries. Changes when what is sent out, to whom, or how reliably changes.
"""
