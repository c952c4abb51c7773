"""recording_ingest: the recordings of calls, from Twilio's media host to a listener's ear.

Fetching each recording into S3 (queue consumer), deleting recordings past retention (nightly),
and serving them to admins and managers as short-lived presigned URLs. Changes when how a
recording is fetched, kept or heard changes.
"""
