"""Benchmark harness for the Service-PIN IVR (issue 5): ``bench/run`` runs it.

Not part of the product package; see ``bench/README.md`` for the method.
"""
