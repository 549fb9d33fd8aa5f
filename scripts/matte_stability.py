"""Flicker, edge IoU and background ghost of the guided matte on a synthetic clip, before/after.

"before" is the guided filter alone (no sure regions, no temporal filter); "after" adds the guided
backend's sure regions and the temporal filter at the config defaults. Run:
    PYTHONPATH=src python scripts/matte_stability.py [--strength 0.7] [--motion 0.05]
"""

from __future__ import annotations

import argparse

from vgen.matte.backends import build_backend
from vgen.matte.evaluation import background_ghost, edge_iou, flicker, synthetic_clip
from vgen.matte.request import MatteInputs, MatteRequest
from vgen.matte.schema import MatteAppConfig
from vgen.matte.temporal import stabilize


def guided_alpha(clip, **options):
    inputs = MatteInputs(frames=clip.frames, fps=24.0, masks=clip.masks)
    return build_backend("guided", **options).run(inputs, MatteRequest(video="synthetic", mask="synthetic")).alpha


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strength", type=float, default=MatteAppConfig.temporal_strength)
    parser.add_argument("--motion", type=float, default=MatteAppConfig.temporal_motion_threshold)
    parser.add_argument("--frames", type=int, default=24)
    args = parser.parse_args()

    clip = synthetic_clip(frames=args.frames)
    plain = guided_alpha(clip, trimap_erode=0, trimap_dilate=0)
    sure = guided_alpha(clip)
    rows = {
        "noisy mask (input)": clip.masks,
        "before: guided": plain,
        "guided + sure regions": sure,
        "guided + temporal": stabilize(plain, clip.frames, args.strength, args.motion),
        "guided + temporal without motion guide": stabilize(plain, clip.frames, args.strength, float("inf")),
        "after: guided + sure regions + temporal": stabilize(sure, clip.frames, args.strength, args.motion),
    }
    print(f"synthetic clip: {clip.frames.shape[0]} frames {clip.frames.shape[2]}x{clip.frames.shape[1]}, "
          f"temporal_strength={args.strength} temporal_motion_threshold={args.motion}")
    print(f"{'':44s} {'flicker':>9s} {'edge IoU':>9s} {'bg ghost':>9s}")
    for name, alpha in rows.items():
        print(f"{name:44s} {flicker(alpha, clip.truth):9.4f} {edge_iou(alpha, clip.truth):9.4f} "
              f"{background_ghost(alpha, clip.truth):9.4f}")


if __name__ == "__main__":
    main()
