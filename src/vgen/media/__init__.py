"""Media persistence: encode, embed metadata, write atomically with retries, probe and read back.

Entry point for the runner: :class:`vgen.media.context.MediaPersistenceContext`.
"""
