"""Jobs: what the queue config expands to (specs, value rules, grids, shards) and each job's output key."""
