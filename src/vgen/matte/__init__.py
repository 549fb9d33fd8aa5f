"""Video matting: a video plus a first-frame (or per-frame) mask -> soft alpha, foreground, RGBA.

Modules: ``request`` (inputs + validation), ``reader`` (image/video decoding), ``trimap`` and
``guided`` (pure-numpy mask algorithms), ``backends`` (guided filter, SAM2 + ViTMatte),
``composite`` (output frames), ``audio`` (audio stream probing/decoding), ``tiny_models``.
"""
