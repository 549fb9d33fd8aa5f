"""Sweeps (multirun): the per-point summary callback, one GPU per process, and the rerun-missing command."""
