"""Conditioned generation: a job's input images, videos and masks (i2v, flf2v, v2v, VACE, ti2v).

- :mod:`~vgen.conditioning.spec`: the job keys, their types, path resolution (no I/O).
- :mod:`~vgen.conditioning.validate`: jobs checked against ``model.inputs`` before a model loads.
- :mod:`~vgen.conditioning.media` / :mod:`~vgen.conditioning.fit`: decoding and the fit policy.
- :mod:`~vgen.conditioning.prepare`: pipeline keyword arguments and the manifest's file records.
"""
