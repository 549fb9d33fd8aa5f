"""Speed and memory knobs applied to a loaded pipeline: attention backend, compilation, quantization,
step caches, and the probe that measures what they do."""
