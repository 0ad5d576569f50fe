"""The ``[aws_ecs_executor]`` configuration: the settings model, one option's value,
cross-field checks. Pure."""
