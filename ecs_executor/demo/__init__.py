"""`make demo`: a real Airflow with this executor against the local ECS endpoint (see docs/demo.md)."""
