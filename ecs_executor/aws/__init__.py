"""AWS plumbing outside the engine: clients and errors, container logs, keeping tokens out of logs."""
