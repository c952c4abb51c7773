"""call_changes: the calls stream fanned out as call events, one SQS message per subscriber.

Its one reason to change: what counts as a call event (started, completed, updated) and who
subscribes to them. AWS advises at most two readers per DynamoDB stream shard and the rollup
consumer is one, so every other reaction to a call's change (conversions, webhooks, CRM push)
subscribes here with its own queue instead of reading the stream itself.
"""
