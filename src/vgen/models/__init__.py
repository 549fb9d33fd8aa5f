"""Model sources: the built-in tiny model and the loader for real diffusers checkpoints."""
