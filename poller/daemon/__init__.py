"""The daemon: schedule, triggers, replicas and their locks, shutdown, metrics."""
