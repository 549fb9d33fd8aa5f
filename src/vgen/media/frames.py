"""Turn what pipelines return (uint8 or [0, 1] float arrays, PIL images, tensors) into uint8 RGB frames.

Conversion happens one frame at a time so a video is never copied whole in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from vgen.errors import MediaWriteError


def to_uint8_frame(frame: Any, *, channels: tuple[int, ...] = (3,)) -> "np.ndarray":  # noqa: F821
    """One HxWxC frame as a C-contiguous uint8 array; floats are taken as [0, 1] and clipped."""
    import numpy as np

    if hasattr(frame, "detach"):  # torch tensor
        frame = frame.detach().cpu().numpy()
    array = np.asarray(frame)
    if array.ndim == 2:
        array = array[:, :, None].repeat(channels[0], axis=2)
    if array.ndim != 3 or array.shape[2] not in channels:
        raise MediaWriteError(f"expected an HxWx{'/'.join(map(str, channels))} frame, got shape {array.shape}")
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating):
            array = np.clip(np.nan_to_num(array.astype(np.float32, copy=False)) * 255.0 + 0.5, 0, 255)
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array)


class FrameSource:
    """Frames as uint8 HxWx3 arrays; knows the frame size before encoding starts.

    Arrays and sequences can be iterated again (so a failed encode can be retried); a one-shot
    iterator can be encoded once.
    """

    def __init__(self, frames: Any, *, channels: tuple[int, ...] = (3,)):
        if getattr(frames, "ndim", 0) == 5 and frames.shape[0] == 1:  # a batch of one video
            frames = frames[0]
        self._frames = frames
        self._channels = channels
        if hasattr(frames, "shape") or isinstance(frames, (list, tuple)):
            if len(frames) == 0:
                raise MediaWriteError("no frames to write")
            self._first = to_uint8_frame(frames[0], channels=channels)
            self._iterator: Iterator | None = None
        else:
            self._iterator = iter(frames)
            try:
                self._first = to_uint8_frame(next(self._iterator), channels=channels)
            except StopIteration:
                raise MediaWriteError("no frames to write") from None
        self._consumed = False

    @property
    def height(self) -> int:
        return int(self._first.shape[0])

    @property
    def width(self) -> int:
        return int(self._first.shape[1])

    def __iter__(self) -> Iterator["np.ndarray"]:  # noqa: F821
        if self._iterator is None:
            return (to_uint8_frame(frame, channels=self._channels) for frame in self._frames)
        if self._consumed:
            raise MediaWriteError("frames came from a one-shot iterator that an earlier attempt consumed")
        self._consumed = True
        return self._chain(self._first, self._iterator)

    def _chain(self, first, rest: Iterable) -> Iterator:
        yield first
        for frame in rest:
            yield to_uint8_frame(frame, channels=self._channels)
