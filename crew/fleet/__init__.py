"""Fleets: one crew over GPUs spread across machines, with Ray Core as the engine (issue #16).

Only the modules of this package import ray, and only inside functions: `plan-gpus` without a cluster
never loads it (tests/test_fleet_parts.py checks). A layout's `cluster:` key brings it in: the probe for the
plan (probe.py), the servers on other nodes for the run (remote.py; docs/fleet.md).
"""
