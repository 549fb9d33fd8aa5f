"""Typed schemas for every config group.

Each group's YAML options extend a schema registered here (``defaults: [<group>_schema]`` is
implicit: the ConfigStore node is named ``<group>/base_<group>``), so a wrong type or an unknown key
fails when Hydra composes the config, naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


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
    task: str = "t2v"
    experts: int = 1  # 2 for two-expert models (Wan 2.2 A14B: transformer / transformer_2)
    frame_multiple: int = 4
    size_multiple: int = 16
    pipeline_kwargs: Dict[str, Any] = field(default_factory=dict)
    fps_kwarg: Optional[str] = None  # pipeline call argument that takes the job's fps (LTX: frame_rate)
    download_hint: str = ""


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


@dataclass
class RuntimeConfig:
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "none"
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
class QueueConfig:
    jobs: List[Any] = field(default_factory=list)
    prompts_file: Optional[str] = None
    repeats: int = 1
    on_error: str = "continue"
    resume: bool = False
    resume_from: Optional[str] = None


@dataclass
class ControlConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False


@dataclass
class VgenConfig:
    model: ModelConfig = MISSING
    output: OutputConfig = MISSING
    metadata: MetadataConfig = MISSING
    lora: LoraConfig = MISSING
    enhancer: EnhancerConfig = MISSING
    queue: QueueConfig = MISSING
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    dry_run: bool = False
    run_dir: str = MISSING


GROUP_SCHEMAS = {
    "model": ModelConfig,
    "output": OutputConfig,
    "metadata": MetadataConfig,
    "lora": LoraConfig,
    "enhancer": EnhancerConfig,
    "queue": QueueConfig,
}


def register_schemas() -> None:
    """Register ``vgen_schema`` and one ``<group>/base_<group>`` node per group (idempotent)."""
    store = ConfigStore.instance()
    store.store(name="vgen_schema", node=VgenConfig)
    for group, schema in GROUP_SCHEMAS.items():
        store.store(group=group, name=f"base_{group}", node=schema)
