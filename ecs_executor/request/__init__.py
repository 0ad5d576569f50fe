"""What a RunTask request is made of: ECS's rules, task ARNs, argument layering, the builder, and where
the task's container logs land. Pure."""
