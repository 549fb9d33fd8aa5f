"""HunyuanVideo 1.5 (``model.adapter: hunyuan_video15``): the pipeline's call takes neither a guidance
scale nor a step callback. Guidance lives in its ``guider`` component (classifier-free guidance), so the
job's guidance scale goes into a copy of that guider; the step hooks (progress, pause/abort, LoRA
schedules) run after each ``scheduler.step`` for the length of the call. The image-to-video call takes
no size either: it sizes the video from the (already fitted) image and the checkpoint's target size.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Any, Callable, Iterator


@contextmanager
def calling(pipe: Any, call_kwargs: dict[str, Any], on_step_end: Callable) -> Iterator[dict[str, Any]]:
    """The call arguments this pipeline takes, with guidance and step hooks moved onto its components."""
    kwargs = dict(call_kwargs)
    guider = pipe.guider
    pipe.guider = guider.new(guidance_scale=kwargs.pop("guidance_scale"))
    kwargs.pop("callback_on_step_end", None)
    accepted = inspect.signature(pipe.__call__).parameters
    for key in ("height", "width"):
        if key not in accepted:
            kwargs.pop(key)
    scheduler_step = pipe.scheduler.step
    counter = iter(range(1 << 30))

    def step(model_output, timestep, sample, *args, **step_kwargs):
        result = scheduler_step(model_output, timestep, sample, *args, **step_kwargs)
        latents = result[0] if isinstance(result, tuple) else result.prev_sample
        on_step_end(pipe, next(counter), timestep, {"latents": latents})
        return result

    pipe.scheduler.step = step
    try:
        yield kwargs
    finally:
        del pipe.scheduler.step  # back to the class's method
        pipe.guider = guider
