"""The worker's entry point for sealed workloads: ``python -m ecs_executor.worker <envelope>``.

When ``workload_kms_key`` is set, the RunTask command carries a sealed envelope (``core/envelope.py``)
instead of the workload. This package runs first in the container: it unwraps the data key with KMS
Decrypt (the task role's credentials), opens the envelope for its try, then replaces itself with the
same command an unsealed launch runs. It imports only the standard library, botocore, cryptography and
two pure modules of ``core`` (never Airflow, never the executor), so it costs the container's start
little. Its exit codes are in ``core/task_status.py`` and docs/worker-image.md.
"""
