"""The per-run media writer the runner holds: output settings + metadata policy -> artifacts."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from vgen.config.schema import OutputConfig
from vgen.hashing import file_sha256
from vgen.media import writers
from vgen.media.artifact import Artifact
from vgen.media.formats import AUDIO_FORMATS, CONTAINERS, IMAGE_FORMATS, VIDEO_CODECS
from vgen.media.frames import FrameSource
from vgen.media.metadata_io import EmbeddedMetadata, sidecar_path
from vgen.media.metadata_state import MetadataState
from vgen.media.validation import output_settings, validate_output_config, validate_settings

__all__ = ["MediaPersistenceContext", "validate_output_config"]

DEFAULT_FPS = 16.0  # used only when neither the caller nor output.fps gives one


def muxed_audio(path: Path) -> list[dict]:
    """What the file's audio streams hold, read back (codec, sample_rate, channels, duration_s); a
    container that stores no stream duration (webm, mkv) has its samples counted by decoding."""
    import av

    from vgen.media.probe import probe

    streams = []
    for stream in probe(path)["streams"]:
        if stream["type"] != "audio":
            continue
        if stream["duration_s"] is None:
            with av.open(str(path)) as container:
                samples = sum(frame.samples for frame in container.decode(container.streams[stream["index"]]))
            stream["duration_s"] = samples / stream["sample_rate"]
        streams.append({key: stream[key] for key in ("codec_name", "sample_rate", "channels", "duration_s")})
    return streams


class MediaPersistenceContext:
    """Writes a run's media. Built fresh per run by :meth:`from_config`; holds no global state."""

    def __init__(self, settings: OutputConfig, metadata_state: MetadataState, *, logger: logging.Logger | None = None):
        self.settings = settings
        self.metadata_state = metadata_state
        self.logger = logger or writers.LOGGER

    @classmethod
    def from_config(cls, output_cfg: Any, metadata_state: MetadataState, *, logger=None) -> "MediaPersistenceContext":
        context = cls(output_settings(output_cfg), metadata_state, logger=logger)
        context.validate()
        return context

    def validate(self) -> None:
        validate_settings(self.settings)

    # ------------------------------------------------------------ helpers

    def _settings_for(self, overrides: dict | None) -> OutputConfig:
        if not overrides:
            return self.settings
        settings = output_settings(self.settings, overrides)
        validate_settings(settings)
        return settings

    def _policy(self, settings: OutputConfig) -> writers.RetryPolicy:
        return writers.RetryPolicy.from_settings(settings)

    def _embedded(self, metadata: dict | None) -> EmbeddedMetadata | None:
        if metadata is None or self.metadata_state.mode != "embedded":
            return None
        return EmbeddedMetadata.build(metadata, embed_source_images=self.metadata_state.embed_source_images)

    def _finish(self, artifact: Artifact, metadata: dict | None, settings: OutputConfig) -> Artifact:
        """Hash the final file and, in json mode, write its sidecar."""
        artifact.bytes = artifact.path.stat().st_size
        artifact.sha256 = file_sha256(artifact.path)
        if metadata is not None and self.metadata_state.mode == "json":
            bundle = EmbeddedMetadata.build(metadata, embed_source_images=self.metadata_state.embed_source_images)
            artifact.metadata_sidecar = writers.write_metadata_bundle(
                sidecar_path(artifact.path), bundle.sidecar_document(), policy=self._policy(settings), logger=self.logger
            )
        return artifact

    # ------------------------------------------------------------ public API

    def save_video(self, frames, path, *, metadata: dict | None = None, fps: float | None = None, role: str = "video",
                   audio=None, overrides: dict | None = None,
                   audio_language: str | list[str | None] | None = None) -> Artifact:
        """Encode ``frames`` ((F,H,W,3) uint8 or [0,1] float, or an iterable of HxWx3 frames).

        The container decides the suffix of ``path``; ``output.fps`` (when set) wins over ``fps``.
        ``audio`` (a file path or ``(samples, sample_rate)``, or a list of them) is muxed in
        (aac/opus/flac by container), each stream tagged with its ``audio_language`` (ISO 639-2,
        e.g. "eng"; a list for several tracks) when given.
        """
        settings = self._settings_for(overrides)
        final = Path(path).with_suffix(CONTAINERS[settings.container].suffix).absolute()
        rate = float(settings.fps or fps or DEFAULT_FPS)
        encoded = writers.write_video(
            FrameSource(frames), final, settings=settings, fps=rate, metadata=self._embedded(metadata), audio=audio,
            audio_language=audio_language, policy=self._policy(settings), logger=self.logger,
        )
        extra = {"encoder": settings.codec, "pix_fmt": settings.pix_fmt}
        if (encoded.width, encoded.height) != (encoded.source_width, encoded.source_height):
            extra["source_size"] = [encoded.source_width, encoded.source_height]
        if audio is not None:
            extra["audio_codec"] = CONTAINERS[settings.container].audio_encoder
            extra["audio_language"] = audio_language
            extra["audio"] = muxed_audio(final)
        artifact = Artifact(
            role=role, path=final, kind="video", container=settings.container,
            codec=VIDEO_CODECS[settings.codec].family, width=encoded.width, height=encoded.height,
            frames=encoded.frames, fps=rate, duration_s=encoded.frames / rate, extra=extra,
        )
        return self._finish(artifact, metadata, settings)

    def save_image(self, image, path, *, metadata=None, role="image", overrides=None) -> Artifact:
        """Write a PIL image or HxWx{1,3,4} array as png/jpeg/webp (``output.image_format``)."""
        settings = self._settings_for(overrides)
        final = Path(path).with_suffix(IMAGE_FORMATS[settings.image_format][1]).absolute()
        picture = writers.write_image(image, final, settings=settings, metadata=self._embedded(metadata),
                                      policy=self._policy(settings), logger=self.logger)
        container = IMAGE_FORMATS[settings.image_format][0].lower()
        artifact = Artifact(role=role, path=final, kind="image", container=container, codec=container,
                            width=picture.width, height=picture.height, frames=1)
        return self._finish(artifact, metadata, settings)

    def save_audio(self, samples, path, *, sample_rate: int, metadata=None, role="audio", language: str | None = None,
                   overrides=None) -> Artifact:
        """Write float32 samples (N,) or (N, C) as wav/flac/ogg (``output.audio_format``)."""
        import soundfile

        settings = self._settings_for(overrides)
        final = Path(path).with_suffix(AUDIO_FORMATS[settings.audio_format][1]).absolute()
        rate, channels, count = writers.write_audio(
            samples, final, sample_rate=sample_rate, settings=settings, metadata=self._embedded(metadata),
            policy=self._policy(settings), logger=self.logger,
        )
        subtype = soundfile.info(str(final)).subtype
        artifact = Artifact(role=role, path=final, kind="audio", container=settings.audio_format,
                            codec=subtype.lower(), duration_s=count / rate, sample_rate=rate, channels=channels,
                            language=language)
        return self._finish(artifact, metadata, settings)

    def save_mask_archive(self, rgba_frames, path, *, metadata=None, role="mask_archive",
                          force=False) -> Artifact | None:
        """ZIP of RGBA PNG frames ``frame_00000.png``...; None unless ``output.save_masks`` or ``force``.

        Metadata (embedded or json mode) goes into a ``metadata.json`` member.
        """
        if not (self.settings.save_masks or force):
            return None
        from PIL import Image

        source = FrameSource(rgba_frames, channels=(4,))
        final = Path(path).with_suffix(".zip").absolute()
        embedded = None
        if metadata is not None and self.metadata_state.mode != "none":
            embedded = EmbeddedMetadata.build(metadata, embed_source_images=self.metadata_state.embed_source_images)

        def members():
            for index, frame in enumerate(source):
                buffer = io.BytesIO()
                Image.fromarray(frame).save(buffer, "PNG")
                yield f"frame_{index:05d}.png", buffer.getvalue()
            if embedded is not None:
                yield "metadata.json", embedded.entries["metadata"].encode("utf-8")
                if "source_images" in embedded.entries:
                    yield "source_images.json", embedded.entries["source_images"].encode("utf-8")

        count = writers.write_archive(final, members, policy=self._policy(self.settings), logger=self.logger)
        frames = count - (0 if embedded is None else len(embedded.entries))
        artifact = Artifact(role=role, path=final, kind="archive", container="zip", codec="png",
                            width=source.width, height=source.height, frames=frames)
        return self._finish(artifact, None, self.settings)
