"""The calltrack command line: local stack, config as code, tokens, demo."""
