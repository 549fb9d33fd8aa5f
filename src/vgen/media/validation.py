"""Check an output config before any model loads; every failure names the field and the reason."""

from __future__ import annotations

import dataclasses
from typing import Any

from vgen.config.schema import OutputConfig
from vgen.errors import ConfigError
from vgen.media import ffmpeg
from vgen.media.formats import AUDIO_FORMATS, CONTAINERS, IMAGE_FORMATS, VIDEO_CODECS

# Fields a single save_* call may override (per job / per artifact).
OVERRIDABLE_FIELDS = frozenset(
    {"crf", "quality", "preset", "pix_fmt", "fps", "extra_args", "image_format", "image_quality",
     "audio_format", "audio_subtype", "audio_sample_rate"}
)


def output_settings(output_cfg: Any, overrides: dict | None = None) -> OutputConfig:
    """An :class:`OutputConfig` from a DictConfig, dict or dataclass, with ``overrides`` applied and
    the codec swapped for its fallback when this ffmpeg build lacks it (libsvtav1 -> libaom-av1)."""
    if dataclasses.is_dataclass(output_cfg):
        data = dataclasses.asdict(output_cfg)
    elif isinstance(output_cfg, dict):
        data = dict(output_cfg)
    else:
        from omegaconf import OmegaConf

        data = OmegaConf.to_container(output_cfg, resolve=True)
    known = {f.name for f in dataclasses.fields(OutputConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"output: unknown field(s) {unknown}")
    for key in sorted(overrides or {}):
        if key not in OVERRIDABLE_FIELDS:
            raise ConfigError(f"output.{key} cannot be overridden per artifact (overridable: {sorted(OVERRIDABLE_FIELDS)})")
    data.update(overrides or {})
    data["extra_args"] = [str(a) for a in data.get("extra_args") or []]
    codec = VIDEO_CODECS.get(data.get("codec"))
    available = ffmpeg.available_encoders()
    if codec and codec.fallback and codec.encoder not in available and codec.fallback in available:
        data["codec"] = codec.fallback
    return OutputConfig(**data)


def _check_range(field: str, value: Any, bounds: tuple[int, int] | None, codec: str) -> None:
    if value is None:
        return
    if bounds is None:
        raise ConfigError(f"output.{field}: codec {codec} does not take {field} (set it to null)")
    if not isinstance(value, int) or isinstance(value, bool) or not bounds[0] <= value <= bounds[1]:
        raise ConfigError(f"output.{field}={value!r} is out of range for {codec}: expected an integer in {list(bounds)}")


def validate_settings(settings: OutputConfig) -> None:
    container = CONTAINERS.get(settings.container)
    if container is None:
        raise ConfigError(f"output.container: unknown container {settings.container!r} (known: {sorted(CONTAINERS)})")
    codec = VIDEO_CODECS.get(settings.codec)
    if codec is None:
        raise ConfigError(f"output.codec: unknown codec {settings.codec!r} (known: {sorted(VIDEO_CODECS)})")
    if codec.family not in container.codecs:
        raise ConfigError(
            f"output.codec: {settings.codec} ({codec.family}) cannot go in a {container.name} container "
            f"({container.name} holds: {', '.join(sorted(container.codecs))})"
        )
    if settings.codec not in ffmpeg.available_encoders():
        raise ConfigError(f"output.codec: this ffmpeg build ({ffmpeg.ffmpeg_exe()}) has no {settings.codec} encoder")
    pix_fmts = ffmpeg.encoder_pix_fmts(settings.codec)
    if pix_fmts and settings.pix_fmt not in pix_fmts:
        raise ConfigError(
            f"output.pix_fmt: {settings.pix_fmt} is not supported by {settings.codec} (supported: {' '.join(pix_fmts)})"
        )
    _check_range("crf", settings.crf, codec.crf_range, settings.codec)
    _check_range("quality", settings.quality, codec.quality_range, settings.codec)
    if settings.preset is not None and codec.preset_flag is None:
        raise ConfigError(f"output.preset: codec {settings.codec} takes no preset (set it to null)")
    if settings.preset is not None and str(settings.preset) not in codec.presets:
        raise ConfigError(
            f"output.preset={settings.preset!r} is not a {settings.codec} preset (one of: {', '.join(codec.presets)})"
        )
    if settings.profile is not None and codec.profile_flag is None:
        raise ConfigError(f"output.profile: codec {settings.codec} takes no profile (set it to null)")
    if settings.fps is not None and not settings.fps > 0:
        raise ConfigError(f"output.fps must be positive or null, got {settings.fps!r}")
    if settings.image_format not in IMAGE_FORMATS:
        raise ConfigError(f"output.image_format: unknown {settings.image_format!r} (known: {sorted(IMAGE_FORMATS)})")
    if not 1 <= settings.image_quality <= 100:
        raise ConfigError(f"output.image_quality must be in [1, 100], got {settings.image_quality}")
    if settings.audio_format not in AUDIO_FORMATS:
        raise ConfigError(f"output.audio_format: unknown {settings.audio_format!r} (known: {sorted(AUDIO_FORMATS)})")
    if settings.audio_subtype is not None:
        import soundfile

        sf_format = AUDIO_FORMATS[settings.audio_format][0]
        if not soundfile.check_format(sf_format, settings.audio_subtype):
            raise ConfigError(
                f"output.audio_subtype: {settings.audio_subtype!r} is not valid for {settings.audio_format} "
                f"(valid: {sorted(soundfile.available_subtypes(sf_format))})"
            )
    if settings.audio_sample_rate is not None and settings.audio_sample_rate <= 0:
        raise ConfigError(f"output.audio_sample_rate must be positive or null, got {settings.audio_sample_rate}")
    if settings.retries < 0 or settings.retry_delay_s < 0:
        raise ConfigError("output.retries and output.retry_delay_s must be >= 0")


def validate_output_config(output_cfg: Any) -> None:
    """Raise :class:`ConfigError` with the reason when ``output_cfg`` cannot be written as configured."""
    validate_settings(output_settings(output_cfg))
