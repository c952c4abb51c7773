"""ops_jobs: what ops hear on a schedule.

The weekly unanswered-call alert, the hourly missed-call spike check and the monthly channel
review (with its decision-flow verdicts and HTML page), published to the ops SNS topic. Changes
when the alert rules, the review's decision flow or its rendering change.
"""
