"""The benchmark harness: `python -m bench` (or `make bench`).

Speed is measured here and never asserted in tests: timings depend on the
machine, and a flaky speed assertion teaches people to ignore red builds.
The service runs as an operator runs it (`python -m server`, its own
process), the model provider is the local fake, and all traffic is loopback.
"""
