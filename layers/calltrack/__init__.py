"""calltrack shared package: shipped to every function as the Lambda layer.

Keep imports here empty: a webhook's cold start pays for whatever this file imports.
"""
