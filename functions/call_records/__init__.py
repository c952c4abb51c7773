"""call_records: what is known about each call and who may amend it.

The calls list, one call, and its CSV; stages, values and CRM leads matched to calls (the funnel);
ad spend per month and channel; the daily calls export for QuickSight. Changes when the call's
public shape or the rules for amending it change. Routes are served by the report_api Lambda
(which bundles this package); the export is its own scheduled Lambda.
"""
