"""What the scheduler-side facade (``executor.py``) is built from: admission, start-up, metrics, and a
workaround for Airflow's task event logs."""
