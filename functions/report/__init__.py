"""report: the read side of analytics.

The calls-stream consumer that keeps the exactly-once rollup counters, and every report read from
them (channels, heatmap, agents, trend, CSV), the stored monthly reviews, and the report API's
composition and OpenAPI document. Changes when what is counted or how it is reported changes.
"""
