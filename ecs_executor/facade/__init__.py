"""What the scheduler-side facade (``executor.py``) is built from: admission, start-up, metrics."""
