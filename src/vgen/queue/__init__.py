"""The queue at run time: the sequential drain, its shared state, background persistence, signals, resume."""
