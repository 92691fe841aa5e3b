"""Video: decode a clip (PyAV), track prompted objects through it with SAM 2, export the result.

Frames are (T, H, W, 3) uint8 RGB; masks are (H, W) bool at the clip's size, kept per frame and object id as
`{frame: {object id: mask}}` (`MaskFrames`). Points are (X, Y) in pixels with labels 1 = positive / 0 = negative,
boxes XYXY in pixels.

Tracking (`VideoTracker`) drives transformers' own SAM 2 video API — `Sam2VideoProcessor.init_video_session`,
`add_inputs_to_inference_session`, `Sam2VideoModel(session, frame_idx)`, `propagate_in_video_iterator`,
`post_process_masks` — with the clip's frames and the session's state in CPU memory: frames are kept as uint8 and
turned into the model's input one at a time, when the model asks for them (12 MB of float32 per frame at 1024 px
would be 22 GB for a 60 s clip); the session's outputs live in CPU memory (`inference_state_device="cpu"`), and
what SAM 2 will not read again is dropped as propagation moves on (`VideoTracker._trim`), so the state of a
tracked frame is its object pointer, not the ~6 MB of mask logits and memory it starts with.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import torch
from PIL import Image

from core.analysis.imaging import palette, to_png
from core.analysis.masks import compress_rle, encode_rle, mask_bbox, overlay_masks
from core.segment_session import Prompt

MaskFrames = dict[int, dict[int, np.ndarray]]  # frame index → object id → (H, W) bool
MAX_SECONDS = 60.0
MAX_SIDE = 640  # pixels of the longest side a clip is decoded at (SAM 2 sees 1024 × 1024 whatever the clip's size)


class ClipError(ValueError):
    """A clip that cannot be used; the message says why in one sentence."""


# ---- decoding -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    """Decoded frames (T, H, W, 3) uint8 RGB at `fps` frames per second; `notes` say what was changed on the way
    (cut to the first 60 s, downscaled, a variable frame rate), one sentence each."""

    frames: np.ndarray
    fps: float
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return self.frames.shape[1], self.frames.shape[2]

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps


def load_clip(source: bytes | str | Path, max_seconds: float = MAX_SECONDS, max_side: int = MAX_SIDE) -> Clip:
    """Decode an mp4, webm or gif (anything FFmpeg reads): its first `max_seconds`, the longest side at most
    `max_side` pixels (even sides, aspect kept). Raises `ClipError` for a file that holds no readable video."""
    try:
        container = av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        raise ClipError("This file could not be read as a video (mp4, webm or gif).") from None
    with container:
        if not container.streams.video:
            raise ClipError("This file has no video track (is it audio only?).")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames, times, broken, cut = _decode(container, stream, max_seconds, max_side)
        total = container.duration / av.time_base if container.duration else None
    if not frames:
        raise ClipError("No video frame could be decoded from this file.")
    fps = _rate(times, stream)
    notes = [broken] if broken else []
    if cut:
        length = f"{total:.0f} s long" if total else f"longer than {max_seconds:.0f} s"
        notes.append(f"The clip is {length}: its first {max_seconds:.0f} s ({len(frames)} frames) are used.")
    h, w = stream.codec_context.height, stream.codec_context.width
    if (h, w) != frames[0].shape[:2]:
        notes.append(f"Frames downscaled from {w} × {h} to {frames[0].shape[1]} × {frames[0].shape[0]} pixels.")
    gaps = np.diff(times)
    if len(gaps) > 1 and gaps.max() - gaps.min() > 0.25 * gaps.mean():
        notes.append(
            f"Variable frame rate (frames {gaps.min() * 1000:.0f}–{gaps.max() * 1000:.0f} ms apart): frames are kept "
            f"in order and played back at their average {fps:.1f} frames/s."
        )
    return Clip(np.stack(frames), fps, tuple(notes))


def _decode(container, stream, max_seconds: float, max_side: int) -> tuple[list[np.ndarray], list[float], str, bool]:
    """(frames, their times in seconds, a note when the file broke off part-way, whether it was cut at
    `max_seconds`)."""
    frames: list[np.ndarray] = []
    times: list[float] = []
    size = None
    try:
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else len(frames) / float(stream.guessed_rate or 25)
            if times and t - times[0] >= max_seconds:
                return frames, times, "", True
            size = size or _fit(frame.width, frame.height, max_side)
            frames.append(frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
            times.append(t)
    except av.FFmpegError:
        if frames:
            return (
                frames,
                times,
                f"The file is damaged after frame {len(frames)}: the frames before it are used.",
                False,
            )
        raise ClipError("This file could not be decoded as a video (mp4, webm or gif).") from None
    return frames, times, "", False


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(W, H) with the longest side at most `max_side` and both sides even (what H.264 export needs)."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _rate(times: list[float], stream) -> float:
    if len(times) > 1 and times[-1] > times[0]:
        return (len(times) - 1) / (times[-1] - times[0])
    return float(stream.average_rate or stream.guessed_rate or 25)


# ---- tracking -------------------------------------------------------------------------------------------------------
class _Frames(Mapping):
    """The session's `processed_frames`: frame i as the processor makes it ((3, S, S) float32), made on demand from
    the uint8 frames, so a long clip costs its uint8 size, not float32 at the model's size."""

    def __init__(self, frames: np.ndarray, video_processor):
        self.frames, self.video_processor = frames, video_processor

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.frames)))

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self.frames):
            raise KeyError(index)
        return self.video_processor(videos=[self.frames[index : index + 1]], return_tensors="pt").pixel_values_videos[
            0
        ][0]


@dataclass(frozen=True)
class FramePrompt:
    """The prompts of one object on one frame: points (N, 2) (X, Y) pixels, labels (N,) 1/0, box (4,) XYXY."""

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None

    def gestures(self) -> list[Prompt]:
        """The prompts as the click widget draws them: the box first (SAM 2 takes it before the points), points."""
        box = [] if self.box is None else [Prompt("box", tuple(float(v) for v in self.box))]
        points = [] if self.points is None else self.points.tolist()
        labels = [] if self.labels is None else self.labels.tolist()
        return box + [
            Prompt("point", (float(x), float(y)), bool(label)) for (x, y), label in zip(points, labels, strict=True)
        ]

    def adding(self, gesture: Prompt) -> FramePrompt:
        """These prompts and one more gesture: a point joins the points, a box replaces the box (SAM 2 takes one)."""
        if gesture.kind == "box":
            return FramePrompt(self.points, self.labels, np.array(gesture.xy, np.float32))
        point, label = np.array([gesture.xy], np.float32), np.array([int(gesture.positive)], np.int64)
        if self.points is None:
            return FramePrompt(point, label, self.box)
        return FramePrompt(np.concatenate([self.points, point]), np.concatenate([self.labels, label]), self.box)


@dataclass(frozen=True)
class Propagation:
    """What one `propagate` run computed: masks of the frames it reached, `done` of `planned` frame steps."""

    masks: MaskFrames
    done: int
    planned: int
    seconds: float
    cancelled: bool

    @property
    def frames_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


Direction = Literal["both", "forward", "backward"]
Progress = Callable[[int, int, float], None]  # (frames done, frames planned, frames per second)


@dataclass
class VideoTracker:
    """One SAM 2 inference session on one clip: prompts on any frame, propagation, and every mask so far.

    `adapter` has `module` (`Sam2VideoModel`) and `processor` (`Sam2VideoProcessor`); `lock` (the engine's
    per-model lock) is held around each frame the model runs. `masks` holds the latest mask of every frame and
    object computed so far; `prompts` the prompts by (frame, object id).
    """

    adapter: object
    frames: np.ndarray
    lock: AbstractContextManager = field(default_factory=nullcontext)
    masks: MaskFrames = field(default_factory=dict)
    prompts: dict[tuple[int, int], FramePrompt] = field(default_factory=dict)

    def __post_init__(self):
        processor = self.adapter.processor
        self.session = processor.init_video_session(
            inference_device=self.adapter.device, inference_state_device="cpu", video_storage_device="cpu"
        )
        self.session.processed_frames = _Frames(self.frames, processor.video_processor)
        self.session.video_height, self.session.video_width = self.size

    @property
    def size(self) -> tuple[int, int]:
        return self.frames.shape[1], self.frames.shape[2]

    @property
    def prompted_frames(self) -> list[int]:
        return sorted({frame for frame, _ in self.prompts})

    def add_prompt(
        self,
        frame: int,
        obj_id: int,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
    ) -> dict[int, np.ndarray]:
        """Prompt object `obj_id` on `frame` (replacing its earlier prompts there) and segment it there at once:
        returns {obj_id: (H, W) bool}. A prompt on a frame that propagation already reached (a correction) makes
        that frame a conditioning frame, as a first prompt is: later propagations keep it and remember it."""
        prompt = _checked(frame, len(self.frames), points, labels, box)
        session = self.session
        with self.lock, torch.inference_mode():
            self._forget_tracking()  # tracked frames were trimmed (`_trim`); the next propagation tracks anew
            self.adapter.processor.add_inputs_to_inference_session(
                session,
                frame_idx=frame,
                obj_ids=obj_id,
                input_points=None if prompt.points is None else [[prompt.points.tolist()]],
                input_labels=None if prompt.labels is None else [[prompt.labels.tolist()]],
                input_boxes=None if prompt.box is None else [[prompt.box.tolist()]],
            )
            out = self.adapter.module(inference_session=session, frame_idx=frame)
            mask = {obj_id: self._masks(out)[obj_id]}
        self.prompts[frame, obj_id] = prompt
        self.masks.setdefault(frame, {}).update(mask)
        return mask

    def propagate(
        self, direction: Direction = "both", progress: Progress | None = None, cancel: Callable[[], bool] | None = None
    ) -> Propagation:
        """Track every prompted object from the earliest prompted frame to the end ("forward"), back to the first
        frame ("backward"), or both (forward first). A run forgets the previous run's tracked frames (not the prompts)
        first, so its masks depend on the prompts only; frames it does not reach keep their masks in `masks`.
        `progress(done, planned, frames/s)` after each frame; `cancel()` true stops after the current frame, keeping
        what is done."""
        if not self.prompts:
            raise ValueError("Add a prompt first: click an object on any frame.")
        start, total = self.prompted_frames[0], len(self.frames)
        passes = [(r, n) for r, n in ((False, total - start), (True, start + 1 if start else 0)) if n]
        passes = [(r, n) for r, n in passes if direction == "both" or r == (direction == "backward")]
        planned, done, began, masks = sum(n for _, n in passes), 0, time.perf_counter(), {}
        self._forget_tracking()
        for reverse, _ in passes:
            steps = self.adapter.module.propagate_in_video_iterator(
                self.session, start_frame_idx=start, reverse=reverse
            )
            for out in _locked(steps, self.lock):
                self._trim(out.frame_idx, reverse)
                masks[out.frame_idx] = self._masks(out)
                self.masks.setdefault(out.frame_idx, {}).update(masks[out.frame_idx])
                done += 1
                if progress:
                    progress(done, planned, done / max(time.perf_counter() - began, 1e-9))
                if cancel and cancel():
                    steps.close()
                    return Propagation(masks, done, planned, time.perf_counter() - began, True)
        return Propagation(masks, done, planned, time.perf_counter() - began, False)

    def _forget_tracking(self) -> None:
        """Drop what earlier propagations tracked (non-conditioning outputs); prompted frames stay."""
        for obj_idx in range(self.session.get_obj_num()):
            self.session.output_dict_per_obj[obj_idx]["non_cond_frame_outputs"].clear()
            self.session.frames_tracked_per_obj[obj_idx].clear()

    def _trim(self, frame: int, reverse: bool) -> None:
        """Keep only what SAM 2 reads again, so a long clip's state stays small: a tracked frame's full-resolution
        mask logits are never read again (4 MB each at 1024 px), its mask memory only by the next `num_maskmem - 1`
        frames and, in the backward pass, near the prompted frames; its object pointer (1 KB) is kept."""
        near = self.adapter.module.num_maskmem
        old = frame + near if reverse else frame - near
        prompted = self.prompted_frames
        for outputs in self.session.output_dict_per_obj.values():
            tracked = outputs["non_cond_frame_outputs"]
            for key in ("high_res_masks", "pred_masks"):
                tracked.get(frame, {}).pop(key, None)
            if old in tracked and all(abs(old - p) >= near for p in prompted):
                tracked[old].pop("maskmem_features", None)
                tracked[old].pop("maskmem_pos_enc", None)

    def _masks(self, out) -> dict[int, np.ndarray]:
        """The model's low-resolution mask logits → {object id: (H, W) bool} at the clip's size (its processor)."""
        (masks,) = self.adapter.processor.post_process_masks([out.pred_masks], original_sizes=[list(self.size)])
        return {obj_id: masks[i, 0].cpu().numpy() for i, obj_id in enumerate(out.object_ids)}


def _locked(steps: Iterator, lock: AbstractContextManager) -> Iterator:
    """`steps`, each one computed under `lock` (another session's frame can run between two of ours)."""
    while True:
        with lock:
            out = next(steps, None)
        if out is None:
            return
        yield out


def _checked(
    frame: int, frames: int, points: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray | None
) -> FramePrompt:
    if not 0 <= frame < frames:
        raise ValueError(f"Frame {frame} is outside the clip (0–{frames - 1}).")
    if points is None and box is None:
        raise ValueError("A prompt needs points or a box.")
    if points is not None:
        points = np.asarray(points, np.float32).reshape(-1, 2)
        labels = np.ones(len(points), np.int64) if labels is None else np.asarray(labels, np.int64).reshape(-1)
        if len(labels) != len(points):
            raise ValueError(f"{len(points)} points but {len(labels)} labels.")
    return FramePrompt(points, labels, None if box is None else np.asarray(box, np.float32).reshape(4))


# ---- exports --------------------------------------------------------------------------------------------------------
def object_colors(obj_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """One (3,) uint8 colour per object id, the same for an id wherever it is drawn."""
    ids = sorted(set(obj_ids))
    colors = palette(max(ids, default=0) + 1)
    return {i: colors[i] for i in ids}


def overlay_frame(frame: np.ndarray, masks: Mapping[int, np.ndarray], alpha: float = 0.5) -> np.ndarray:
    """An HWC uint8 frame with each object's mask in its colour (`object_colors`) and a 2-pixel contour."""
    if not masks:
        return frame
    colors = object_colors(masks)
    ids = sorted(masks)
    return overlay_masks(frame, [masks[i] for i in ids], np.stack([colors[i] for i in ids]), alpha, contour=2)


@dataclass(frozen=True)
class Exported:
    data: bytes
    file_name: str
    mime: str


def export_overlay(
    frames: np.ndarray, masks: MaskFrames, fps: float, alpha: float = 0.5, name: str = "tracked"
) -> Exported:
    """The clip with its masks drawn: an H.264 mp4 (PyAV), or a gif (Pillow) where no mp4 encoder is available."""
    drawn = (overlay_frame(frame, masks.get(i, {}), alpha) for i, frame in enumerate(frames))
    codec = _mp4_codec()
    if codec is None:
        return Exported(_gif(drawn, fps), f"{name}.gif", "image/gif")
    return Exported(_mp4(drawn, fps, codec, frames.shape[1:3]), f"{name}.mp4", "video/mp4")


def overlay_format() -> tuple[str, str]:
    """(file suffix, MIME type) `export_overlay` writes on this machine: mp4 when PyAV has an encoder for it."""
    return ("mp4", "video/mp4") if _mp4_codec() else ("gif", "image/gif")


def _mp4_codec() -> str | None:
    return next((c for c in ("libx264", "h264", "mpeg4") if c in av.codecs_available), None)


def _mp4(frames: Iterable[np.ndarray], fps: float, codec: str, size: tuple[int, int]) -> bytes:
    h, w = size[0] // 2 * 2, size[1] // 2 * 2  # yuv420p wants even sides
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")))
        out.mux(stream.encode())
    return buffer.getvalue()


def _gif(frames: Iterable[np.ndarray], fps: float) -> bytes:
    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return buffer.getvalue()


def masks_png_zip(masks: MaskFrames) -> bytes:
    """A zip of one PNG per frame and object (`frame_00012_object_1.png`, 0 / 255 grey)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for frame in sorted(masks):
            for obj_id in sorted(masks[frame]):
                archive.writestr(f"frame_{frame:05d}_object_{obj_id}.png", to_png(masks[frame][obj_id]))
    return buffer.getvalue()


def masks_coco(masks: MaskFrames, size: tuple[int, int], fps: float) -> dict:
    """COCO annotations of every frame (an image each, `frame_index`) and object (a category each), masks as
    compressed RLE; an object absent from a frame has an empty mask (area 0)."""
    h, w = size
    obj_ids = sorted({o for frame in masks.values() for o in frame})
    frames = sorted(masks)
    annotations = [
        {
            "id": n + 1,
            "image_id": frame + 1,
            "category_id": obj_id,
            "segmentation": compress_rle(encode_rle(mask)),
            "area": int(mask.sum()),
            "bbox": list(mask_bbox(mask)),
            "iscrowd": 0,
        }
        for n, (frame, obj_id, mask) in enumerate(
            (f, o, masks[f].get(o, np.zeros((h, w), bool))) for f in frames for o in obj_ids
        )
    ]
    return {
        "info": {"description": "SAM 2 video tracking, VFM Lens", "fps": fps},
        "images": [
            {"id": f + 1, "file_name": f"frame_{f:05d}.png", "frame_index": f, "height": h, "width": w} for f in frames
        ],
        "annotations": annotations,
        "categories": [{"id": o, "name": f"object {o}"} for o in obj_ids],
    }


def coco_json(masks: MaskFrames, size: tuple[int, int], fps: float) -> str:
    return json.dumps(masks_coco(masks, size, fps))
