"""Side-by-side benchmarks: this executor vs the Amazon provider's ``AwsEcsExecutor``.

``python -m benchmarks.run`` (or ``make bench``); see docs/benchmarks.md.
"""
