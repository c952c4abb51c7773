"""transcripts: what a call's conversation says and what the account's call rules make of it.

Its one reason to change: turning a stored recording into a transcript on its call (Amazon
Transcribe behind the ``engine`` port, started on the call-changes fan-out's "recording stored",
finished on EventBridge's "Transcribe Job State Change") and applying the account's ``call_rules``
(tags, stage, score) exactly once per rule and call, when a call completes or its transcript
arrives. Read by the report API: ``GET /v1/calls/{call_sid}/transcript`` (``transcripts.api``).
"""
