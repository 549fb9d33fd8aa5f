"""Typed schemas for every config group.

Each group's YAML options extend a schema registered here (``defaults: [<group>_schema]`` is
implicit: the ConfigStore node is named ``<group>/base_<group>``), so a wrong type or an unknown key
fails when Hydra composes the config, naming the key.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ModelInput:
    """One conditioning input a model takes: the pipeline argument it maps to, and whether it is required."""

    arg: str = MISSING
    required: bool = False
    # A job that sets this input runs on this diffusers pipeline class instead, built from the loaded
    # pipeline with ``from_pipe`` (same weights): Wan 2.2 TI2V's text and image modes.
    pipeline_class: Optional[str] = None


@dataclass
class ModelComponent:
    """Per-component loading overrides (Wan's model card loads the VAE in float32 beside a bf16 transformer)."""

    dtype: Optional[str] = None  # float32 | bfloat16 | float16; null = runtime.dtype


@dataclass
class SchedulerSettings:
    """The scheduler to run with: a diffusers class built ``from_config`` of the checkpoint's, plus overrides."""

    class_name: Optional[str] = None  # e.g. UniPCMultistepScheduler; null = the checkpoint's own class
    settings: Dict[str, Any] = field(default_factory=dict)  # e.g. {flow_shift: 3.0}


@dataclass
class ModelGenerationDefaults:
    """A model's own generation defaults (its card's size, frames, steps, ...); null = conf/config.yaml's.

    Precedence: command line > experiment > these > conf/config.yaml ``generation`` (whose values read
    these through ``${vgen_model_default:KEY,FALLBACK}``, see vgen.config.model_defaults).
    """

    negative_prompt: Optional[str] = None
    height: Optional[int] = None
    width: Optional[int] = None
    num_frames: Optional[int] = None
    steps: Optional[int] = None
    guidance_scale: Optional[float] = None
    guidance_scale_2: Optional[float] = None
    fps: Optional[int] = None
    strength: Optional[float] = None
    duration_s: Optional[float] = None


@dataclass
class ModelConfig:
    """Which diffusers pipeline to load and how (``source`` is a hub id, a local dir or ``builtin:NAME``)."""

    name: str = MISSING
    family: str = "wan"
    pipeline_class: str = "WanPipeline"
    source: str = MISSING
    revision: Optional[str] = None
    variant: Optional[str] = None
    local_files_only: bool = True
    task: str = "t2v"  # t2v | i2v | flf2v | v2v | vace | ti2v | t2i (image) | t2a (audio)
    inputs: Dict[str, ModelInput] = field(default_factory=dict)  # job key (image, video, ...) -> pipeline argument
    experts: int = 1  # 2 for two-expert models (Wan 2.2 A14B: transformer / transformer_2)
    frame_multiple: int = 4
    size_multiple: int = 16
    pipeline_kwargs: Dict[str, Any] = field(default_factory=dict)
    components: Dict[str, ModelComponent] = field(default_factory=dict)  # by pipeline component name (vae, ...)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    fps_kwarg: Optional[str] = None  # pipeline call argument that takes the job's fps (LTX: frame_rate)
    frames_kwarg: Optional[str] = "num_frames"  # null when the pipeline takes its length from a source video
    guidance_kwarg: str = "guidance_scale"  # pipeline argument that takes the job's guidance_scale (Qwen: true_cfg_scale)
    duration_kwarg: Optional[str] = None  # pipeline argument that takes an audio job's duration_s (Stable Audio: audio_end_in_s)
    sound: bool = False  # the pipeline also returns a soundtrack (LTX-2), muxed into the video
    adapter: Optional[str] = None  # vgen.models.<adapter> for a family whose call needs code (hunyuan_video15)
    download_hint: str = ""
    generation_defaults: ModelGenerationDefaults = field(default_factory=ModelGenerationDefaults)


@dataclass
class GenerationConfig:
    """Defaults of every job; a job's own keys override these."""

    prompt: str = ""
    negative_prompt: str = ""
    height: int = 64
    width: int = 64
    num_frames: int = 9
    steps: int = 4
    guidance_scale: float = 5.0
    fps: int = 16
    seed: int = 42
    # Conditioning inputs (see vgen.conditioning): files, relative to the working dir (or a prompts file's folder).
    image: Optional[str] = None
    image_end: Optional[str] = None
    images_ref: Optional[List[str]] = None
    video: Optional[str] = None
    mask: Optional[str] = None
    strength: Optional[float] = None
    guidance_scale_2: Optional[float] = None
    duration_s: Optional[float] = None  # seconds of audio (text-to-audio models); unset: the pipeline's default
    fit: str = "crop"  # crop | pad | stretch
    loop_video: bool = False


@dataclass
class QuantizationConfig:
    """Per-component weight quantization (see vgen.speed.quantization)."""

    transformer: str = "none"  # none | int8 | fp8 | nf4 | gguf
    text_encoder: str = "none"  # none | int8 | fp8 | nf4
    gguf_file: Optional[str] = None  # the transformer's .gguf file when transformer=gguf


@dataclass
class RuntimeConfig:
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "none"
    attention: str = "default"
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    compile: str = "off"  # off | regional | full
    lora_max_rank: int = 128  # highest LoRA rank hotswapped into a compiled transformer
    vae_tiling: bool = False
    threads: int = 0
    cache_dir: Optional[str] = None
    progress: bool = True


@dataclass
class OutputConfig:
    """Container/codec preset plus image, audio and mask settings (see conf/output/)."""

    name: str = MISSING
    container: str = "mp4"
    codec: str = "libx264"
    crf: Optional[int] = None
    quality: Optional[int] = None
    preset: Optional[str] = None
    profile: Optional[str] = None
    pix_fmt: str = "yuv420p"
    fps: Optional[float] = None
    tag: Optional[str] = None
    extra_args: List[str] = field(default_factory=list)
    image_format: str = "png"
    image_quality: int = 95
    audio_format: str = "wav"
    save_audio_separately: bool = False  # a video with a generated soundtrack also writes the track (role audio)
    audio_subtype: Optional[str] = None
    audio_sample_rate: Optional[int] = None
    save_masks: bool = False
    retries: int = 3
    retry_delay_s: float = 0.2
    background_writer: bool = True
    writer_queue_size: int = 2


@dataclass
class MetadataConfig:
    mode: str = "embedded"
    embed_source_images: bool = False


@dataclass
class LoraEntry:
    name: str = MISSING
    weight: Any = 1.0


@dataclass
class LoraConfig:
    """A LoRA preset (``lora=NAME``) and where LoRA files are discovered."""

    name: str = "none"
    dirs: List[str] = field(default_factory=lambda: ["loras"])
    preset: Optional[str] = None
    loras: List[LoraEntry] = field(default_factory=list)
    prompt: Optional[str] = None
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    full_prompt: bool = False


@dataclass
class EnhancerConfig:
    backend: str = "none"
    model: Optional[str] = None
    gguf_file: Optional[str] = None
    captioner: Optional[str] = None
    captioner_model: Optional[str] = None
    caption_max_new_tokens: int = 128
    source: str = "text"  # what is rewritten: text | image (the caption) | text+image
    mode: str = "expand"  # expand (the user's prompt verbatim + added detail) | rewrite
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    # [min, max] words of the enhanced prompt per task (vgen.enhancer.prompts.TASKS)
    word_limits: Dict[str, List[int]] = field(
        default_factory=lambda: {"t2v": [40, 120], "i2v": [40, 120], "t2i": [30, 90], "audio": [20, 80]}
    )
    min_recall: float = 0.9  # share of the prompt's content words a rewrite must keep
    max_invented: int = 0  # people/animals/vehicles/objects a rewrite may add
    retries: int = 2  # seeded sampling attempts after an unfaithful first rewrite
    retry_temperature: float = 0.7
    device: str = "auto"
    offload_after_use: bool = False
    on_error: str = "fallback"
    cache_dir: Optional[str] = None


@dataclass
class CacheConfig:
    """A step cache (``cache=NAME``, see vgen.speed.step_cache); each cache uses only its own keys."""

    name: str = "none"
    threshold: Optional[float] = None
    cache_interval: Optional[int] = None
    disable_cache_before_step: Optional[int] = None
    disable_cache_after_step: Optional[int] = None
    max_order: Optional[int] = None
    cache_identifiers: Optional[List[str]] = None
    max_skip_steps: Optional[int] = None
    retention_ratio: Optional[float] = None
    mag_ratios: Optional[List[float]] = None
    calibrate: Optional[bool] = None
    spatial_attention_block_skip_range: Optional[int] = None
    spatial_attention_timestep_skip_range: Optional[List[float]] = None
    attention_weight: Optional[float] = None
    is_guidance_distilled: Optional[bool] = None


@dataclass
class QueueConfig:
    jobs: List[Any] = field(default_factory=list)
    prompts_file: Optional[str] = None
    default_jobs: List[Any] = field(default_factory=list)  # run only when jobs and prompts_file give none
    repeats: int = 1
    on_error: str = "continue"
    resume: bool = False
    resume_from: Optional[str] = None
    grid: Any = None  # job key -> values: every job runs once per combination
    num_shards: int = 1  # split the (expanded) queue into this many cost-balanced shards
    shard: Any = 0  # which shard this process runs: 0..num_shards-1, or auto (SLURM array / LOCAL_RANK)
    only_jobs: Optional[str] = None  # a file of job_ids (one a line): run only these jobs of the queue


@dataclass
class ControlConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False


@dataclass
class ReportConfig:
    """The report written after every run and sweep (see vgen.report)."""

    enabled: bool = True
    previews: bool = False  # small h264 previews of videos browsers cannot play (h265, ProRes)


@dataclass
class VgenConfig:
    model: ModelConfig = MISSING
    output: OutputConfig = MISSING
    metadata: MetadataConfig = MISSING
    lora: LoraConfig = MISSING
    enhancer: EnhancerConfig = MISSING
    queue: QueueConfig = MISSING
    cache: CacheConfig = field(default_factory=CacheConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    dry_run: bool = False
    run_dir: str = MISSING


GROUP_SCHEMAS = {
    "model": ModelConfig,
    "output": OutputConfig,
    "metadata": MetadataConfig,
    "lora": LoraConfig,
    "enhancer": EnhancerConfig,
    "queue": QueueConfig,
    "cache": CacheConfig,
}


def register_schemas() -> None:
    """Register ``vgen_schema`` and one ``<group>/base_<group>`` node per group (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="vgen_schema", node=VgenConfig)
    for group, schema in GROUP_SCHEMAS.items():
        store.store(group=group, name=f"base_{group}", node=schema)


def unknown_keys(cfg: Mapping[str, Any], schema: type, prefix: str = "") -> list[str]:
    """Dotted keys of ``cfg`` that ``schema`` lacks: ``+key=value`` overrides add them past Hydra's checks."""
    hints = typing.get_type_hints(schema)
    unknown = []
    for key in cfg:
        if key not in hints:
            unknown.append(f"{prefix}{key}")
        elif dataclasses.is_dataclass(hints[key]) and isinstance(cfg[key], Mapping):
            unknown += unknown_keys(cfg[key], hints[key], f"{prefix}{key}.")
    return unknown
