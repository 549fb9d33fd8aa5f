"""What a run dir holds besides media: the JSONL manifest, the one-process lock, the log file."""
