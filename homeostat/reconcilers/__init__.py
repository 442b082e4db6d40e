"""Reconcilers: one module per kind. Observe live AWS in batches, diff purely, apply.

Above desired_state, below operator. No metrics, history, scheduling or
prometheus here: the operator's executor turns the actions these modules
return into history rows, metrics and log lines.
"""
