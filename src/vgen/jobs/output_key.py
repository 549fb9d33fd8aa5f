"""A job's output key: the job id plus everything outside the job spec that changes what it produces.

``job_id`` hashes the job spec (generation defaults + the job's own keys) and names the job's files,
so it stays the same when the model, its dtype, a LoRA file or the enhancer change. The output key
hashes ``job_id`` with the job's *output recipe* (below); every row records both, and resume counts a
job as done only when a ``success`` row has the same ``job_id`` **and** ``output_key``
(docs/MANIFEST.md lists what the recipe covers and what it deliberately leaves out).
"""

from __future__ import annotations

from typing import Any, Mapping

from vgen.hashing import canonical_json, sha256_hex

# Model settings that select the weights and how the pipeline is called; labels, hints and
# validation-only keys (name, download_hint, local_files_only, frame/size_multiple) are left out.
MODEL_KEYS = ("family", "pipeline_class", "source", "revision", "variant", "task", "experts", "pipeline_kwargs",
              "fps_kwarg", "components", "scheduler", "guidance_kwarg", "duration_kwarg",
              "adapter")
# Output settings that do not change the written files: the preset's label and the write machinery.
OUTPUT_KEYS_IGNORED = ("name", "retries", "retry_delay_s", "background_writer", "writer_queue_size")
# Enhancer settings that change the rewritten text (device, cache and error policy do not).
ENHANCER_SETTINGS = ("source", "mode", "max_new_tokens", "temperature", "top_p", "repetition_penalty", "seed",
                     "word_limits", "min_recall", "max_invented", "retries", "retry_temperature")


def lora_recipe(lora_payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """Each LoRA's file sha256 and parsed weight schedule, and the prompt transform (names and paths left out)."""
    if not lora_payload:
        return None
    return {
        "loras": [{"sha256": entry["sha256"], "weight": entry["weight"]} for entry in lora_payload["loras"]],
        "prompt_transform": lora_payload["prompt_transform"],
    }


def enhancer_recipe(enhancer_cfg: Any) -> dict[str, Any] | None:
    """The rewrite model (and captioner when one is used) with the settings that change its text."""
    from vgen.enhancer.checkpoints import llm_display_name
    from vgen.enhancer.settings import captioner_key, validate_enhancer_config

    cfg = validate_enhancer_config(enhancer_cfg)
    if cfg["backend"] == "none":
        return None
    captioner = [cfg["captioner"], cfg["captioner_model"], cfg["caption_max_new_tokens"]]
    return {
        "backend": cfg["backend"],
        "model": llm_display_name(cfg),
        "captioner": captioner if captioner_key(cfg) is not None else None,
        **{key: cfg[key] for key in ENHANCER_SETTINGS},
    }


def step_cache_recipe(cache: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The step cache and its own settings (``None`` without one)."""
    from vgen.speed.step_cache import CACHE_KEYS

    if not cache or cache.get("name", "none") == "none":
        return None
    return {"name": cache["name"], **{key: cache.get(key) for key in CACHE_KEYS[cache["name"]]}}


def output_recipe(
    *,
    model: Mapping[str, Any],
    dtype: str,
    vae_tiling: bool,
    lora_payload: Mapping[str, Any],
    enhancer_cfg: Any,
    output: Mapping[str, Any],
    input_files: Mapping[str, Any],
    cache: Mapping[str, Any] | None = None,
    quantization: str = "none",
) -> dict[str, Any]:
    """What besides the job spec decides a job's output. ``dtype`` is the resolved one (never ``auto``);
    ``input_files`` the sha256 of each conditioning input file (the job spec names only their paths)."""
    recipe = {
        "model": {key: model.get(key) for key in MODEL_KEYS},
        "dtype": dtype,
        "vae_tiling": bool(vae_tiling),
        "lora": lora_recipe(lora_payload),
        "enhancer": enhancer_recipe(enhancer_cfg),
        "output": {key: value for key, value in output.items() if key not in OUTPUT_KEYS_IGNORED},
    }
    if input_files:  # absent without conditioning inputs (like the two below): earlier keys stay valid
        recipe["input_files"] = dict(input_files)
    if (cache_recipe := step_cache_recipe(cache)) is not None:  # absent without one: earlier keys stay valid
        recipe["cache"] = cache_recipe
    if quantization != "none":  # vgen.speed.quantization.cache_key: modes per component (+ the GGUF file)
        recipe["quantization"] = quantization
    return recipe


def input_file_hashes(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``{key: sha256}`` (a list for ``images_ref``) of a resolved job's conditioning input files."""
    from vgen.conditioning.spec import FILE_KEYS
    from vgen.hashing import file_sha256

    return {key: [file_sha256(path) for path in value] if isinstance(value, list) else file_sha256(value)
            for key, value in settings.items() if key in FILE_KEYS and value}


def output_key(job_id: str, recipe: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json({"job_id": job_id, "recipe": recipe}))[:16]
