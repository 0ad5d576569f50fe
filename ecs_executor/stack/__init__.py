"""``airflow ecs-executor config-from-stack``: the executor's options from a deployed CloudFormation stack."""
