"""Desired state: manifest models, the directory loader, validation and revisions.

The bottom layer. It needs no AWS (so `validate` and `schema` run anywhere) and
knows nothing of the operator, the history store or metrics.
"""
