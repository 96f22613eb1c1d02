"""The runtime every service shares: settings, event log, projector kernel, commands.

Import from the modules themselves; this package imports nothing, so that a
light client (the CLI, the SDK) loads only what it uses.
"""
