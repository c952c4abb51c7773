"""conversions: qualified calls sent back to the ad platforms as conversions (issue 16).

Its one reason to change: which calls count as conversions for an account's rules and how each
platform (Google Ads, Yahoo! JAPAN 検索広告, Meta, GA4) receives them -- API upload, restatement,
or the manual-import CSV. It subscribes to the call_changes fan-out (queue ``conversions``) and
keeps one row per (call, rule, destination) in the conversions table, written at most once.
"""
