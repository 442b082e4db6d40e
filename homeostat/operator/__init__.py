"""The operator: CLI, runtime wiring and loop, executor, history store, AWS session, HTTP endpoints.

Lives inside the `homeostat` package because a top-level package named
`operator` would shadow Python's standard-library `operator` module.
"""
