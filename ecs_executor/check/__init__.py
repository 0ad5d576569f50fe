"""``airflow ecs-executor check`` / ``python -m ecs_executor.check``: can this deployment run tasks?"""
