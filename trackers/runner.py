"""The generic runner: any tracker of the toolkit over every sequence of a dataset, results in the standard format.

Frame 0 initialises the tracker with the ground-truth box (and the video's language), or, given ``init_box`` (the
NL setting: :class:`trackers.grounding.GroundingPredictor`), with the box it predicts, which is then the results
file's first row; every later frame is tracked. Each finished sequence is written at once with :func:`asearch.evaluation.write_results`
(``<name>.txt`` + ``<name>_time.json``, atomically; ``<name>_info.json`` too for a tracker with ``frame_info_keys``,
e.g. CTRTNL's switch decisions), so a killed run resumes where it stopped: a sequence whose
results file already holds the expected number of rows is skipped.

``batch_size > 1`` tracks that many videos in lockstep, one model call per frame for all of them; when a video ends
its slot is refilled with the next sequence (videos of different lengths each finish on their own). Timing in
batched mode: each step's wall time is shared equally among the videos of that step.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np

from asearch.errors import DataError
from asearch.evaluation.results import results_done, write_frame_info, write_results
from asearch.runtime import plain_progress

__all__ = ["run_dataset", "track_sequence", "tracked_frames"]


def tracked_frames(seq: Any, max_frames: Optional[int]) -> int:
    """The frames of ``seq`` a run with ``max_frames`` tracks (all when ``None`` or 0)."""
    return len(seq) if not max_frames else min(len(seq), int(max_frames))


def _init_box(seq: Any) -> np.ndarray:
    box = np.asarray(seq.boxes[0], dtype=np.float64)
    if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
        raise DataError(f"sequence '{seq.name}': the first-frame ground truth {box.tolist()} cannot initialise a "
                        "tracker", path=seq.meta.get("annotation_path") if hasattr(seq, "meta") else None,
                        field="groundtruth[0]")
    return box


def track_sequence(tracker: Any, seq: Any, max_frames: Optional[int] = None,
                   init_box: Optional[Callable[[Any], np.ndarray]] = None) -> Dict[str, Any]:
    """Track one sequence with a one-video tracker: ``{'boxes': N×4, 'times': [...], 'scores': [...], 'info':
    [...]}`` (``info``: per frame the result's values of the tracker's ``frame_info_keys``, frame 0 ``mode: init``);
    ``init_box(seq)``: the first box (default: the ground truth)."""
    n = tracked_frames(seq, max_frames)
    box = np.asarray((init_box or _init_box)(seq), dtype=np.float64)
    keys = _info_keys(tracker)
    boxes, times, scores, info = [box], [], [1.0], [_INIT]
    t0 = time.perf_counter()
    tracker.initialize(seq.frame(0), box, seq)
    times.append(time.perf_counter() - t0)
    for i in range(1, n):
        image = seq.frame(i)
        t0 = time.perf_counter()
        out = tracker.track(image)
        times.append(time.perf_counter() - t0)
        boxes.append(np.asarray(out["box"], dtype=np.float64))
        scores.append(float(out.get("score", np.nan)))
        info.append({k: out.get(k) for k in keys})
    return {"boxes": np.stack(boxes), "times": times, "scores": scores, "info": info}


_INIT = {"mode": "init"}


def _info_keys(tracker: Any) -> tuple:
    return tuple(getattr(tracker, "frame_info_keys", ()) or ())


def run_dataset(tracker_factory: Callable[[], Any], dataset: Iterable[Any], out_dir: Union[str, Path],
                batch_size: int = 1, max_frames: Optional[int] = None, limit_videos: Optional[int] = None,
                overwrite: bool = False, progress: bool = True,
                init_box: Optional[Callable[[Any], np.ndarray]] = None) -> Dict[str, Any]:
    """Run a tracker over ``dataset`` (``Sequence`` records) and write ``<out_dir>/<name>.txt`` per sequence.

    Args:
        tracker_factory: ``() -> tracker`` (a :class:`~trackers.inference.base.BatchedTracker`); called once.
        dataset: iterable of sequences (``name``, ``boxes``, ``frame(i)``, ``len``, language fields).
        out_dir: results folder (created).
        batch_size: videos tracked in lockstep.
        max_frames: track only the first ``max_frames`` frames of each video.
        limit_videos: only the first ``limit_videos`` sequences.
        overwrite: re-track sequences that already have complete results.
        progress: show a tqdm bar (frames).
        init_box: ``seq -> x, y, w, h``, the box the tracker starts from and the first row written (default: the
            first-frame ground truth; the NL setting: a grounding model's prediction).

    Returns:
        ``{'done': [names tracked now], 'skipped': [names already done], 'fps': {name: fps}}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seqs = list(dataset)
    if limit_videos is not None:
        seqs = seqs[:int(limit_videos)]
    todo, skipped = [], []
    for seq in seqs:
        if not overwrite and results_done(out_dir, seq.name, tracked_frames(seq, max_frames)):
            skipped.append(seq.name)
        else:
            todo.append(seq)
    summary: Dict[str, Any] = {"done": [], "skipped": skipped, "fps": {}}
    if not todo:
        return summary
    from tqdm import tqdm

    bar = tqdm(total=sum(tracked_frames(s, max_frames) for s in todo), unit="frame", disable=not progress,
               desc=f"tracking {len(todo)} videos")
    tracker = tracker_factory()

    plain = plain_progress(progress)  # a line per video where no bar is seen

    keys = _info_keys(tracker)

    def finish(seq: Any, boxes: List[np.ndarray], times: List[float], info: List[Dict[str, Any]]) -> None:
        if keys:  # before the boxes file, whose presence marks the sequence done
            write_frame_info(out_dir, seq.name, keys, info)
        write_results(out_dir, seq.name, np.stack(boxes), times=times)
        summary["done"].append(seq.name)
        total = sum(times)
        summary["fps"][seq.name] = len(times) / total if total > 0 else None
        if plain:
            fps = summary["fps"][seq.name]
            print(f"track video {len(summary['done'])}/{len(todo)} {seq.name}: {len(times)} frames"
                  + (f", {fps:.1f} fps" if fps else ""), flush=True)

    if batch_size <= 1:
        for seq in todo:
            res = track_sequence(tracker, seq, max_frames, init_box)
            bar.update(len(res["boxes"]))
            finish(seq, list(res["boxes"]), res["times"], res["info"])
        bar.close()
        return summary

    queue = list(todo)
    slots: List[Dict[str, Any]] = []                       # one per active video, in the tracker's batch order
    while queue or slots:
        new = []
        while queue and len(slots) + len(new) < batch_size:
            seq = queue.pop(0)
            first = np.asarray((init_box or _init_box)(seq), dtype=np.float64)
            new.append({"seq": seq, "n": tracked_frames(seq, max_frames), "boxes": [first], "times": [],
                        "info": [_INIT]})
        if new:
            t0 = time.perf_counter()
            tracker.add_videos([s["seq"].frame(0) for s in new], [s["boxes"][0] for s in new],
                               [s["seq"] for s in new])
            share = (time.perf_counter() - t0) / len(new)
            for s in new:
                s["times"].append(share)
            slots.extend(new)
            bar.update(len(new))
        # videos of a single frame end right after initialisation
        ended = [i for i, s in enumerate(slots) if len(s["boxes"]) >= s["n"]]
        if not ended:
            images = [s["seq"].frame(len(s["boxes"])) for s in slots]
            t0 = time.perf_counter()
            outs = tracker.track_batch(images)
            share = (time.perf_counter() - t0) / len(slots)
            for s, out in zip(slots, outs):
                s["boxes"].append(np.asarray(out["box"], dtype=np.float64))
                s["times"].append(share)
                s["info"].append({k: out.get(k) for k in keys})
            bar.update(len(slots))
            ended = [i for i, s in enumerate(slots) if len(s["boxes"]) >= s["n"]]
        if ended:
            for i in ended:
                finish(slots[i]["seq"], slots[i]["boxes"], slots[i]["times"], slots[i]["info"])
            alive = [i for i in range(len(slots)) if i not in ended]
            tracker.keep(alive)
            slots = [slots[i] for i in alive]
    bar.close()
    return summary
