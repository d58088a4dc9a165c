"""Decoding speed of the PyPI video readers considered for `data/video_decode.py`, on one file.

Each reader decodes every frame of FILE to an RGB uint8 array, on one thread, REPEATS times; the
best wall time and the least CPU time (this process and its children, so imageio-ffmpeg's ffmpeg
subprocess counts) are reported as frames per second. Readers that are not installed are listed
as such: only PyAV (`av`) is a dependency; try the others in a throwaway environment with
`pip install opencv-python-headless imageio-ffmpeg`. On a shared machine, frames per CPU-second
are the steadier figure.

    python benchmarks/video_decoders.py /usr/share/doc/opencv-doc/examples/data/vtest.avi \
        [--repeats 5] [--out benchmarks/results/video_decoders.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# OpenCV reads its FFmpeg options from the environment when the first capture opens.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "threads;1")


def _cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(item.ru_utime + item.ru_stime for item in usage)


def _pyav(path: str) -> int:
    import av

    count = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            count += 1
    return count


def _opencv(path: str) -> int:
    import cv2

    cv2.setNumThreads(1)
    capture, count = cv2.VideoCapture(path, cv2.CAP_FFMPEG), 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        count += 1
    capture.release()
    return count


def _imageio_ffmpeg(path: str) -> int:
    import imageio_ffmpeg

    frames = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24", input_params=["-threads", "1"])
    width, height = next(frames)["size"]
    count = 0
    for data in frames:
        np.frombuffer(data, np.uint8).reshape(height, width, 3)
        count += 1
    return count


READERS: dict[str, tuple[str, Callable[[str], int]]] = {
    "av": ("PyAV", _pyav),
    "cv2": ("opencv-python-headless", _opencv),
    "imageio_ffmpeg": ("imageio-ffmpeg", _imageio_ffmpeg),
}


def measure(path: str, repeats: int) -> dict[str, dict[str, float | int | str]]:
    results: dict[str, dict[str, float | int | str]] = {}
    for module, (name, read) in READERS.items():
        if importlib.util.find_spec(module) is None:
            results[name] = {"status": f"not installed (pip install {name})"}
            continue
        walls, cpus, count = [], [], 0
        for _ in range(repeats):
            start, cpu = time.perf_counter(), _cpu_seconds()
            count = read(path)
            walls.append(time.perf_counter() - start)
            cpus.append(_cpu_seconds() - cpu)
        results[name] = {
            "frames": count,
            "frames_per_s_wall_best": round(count / min(walls), 1),
            "frames_per_cpu_s_best": round(count / max(min(cpus), 1e-9), 1),
        }
        print(f"{name:24s} {results[name]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = measure(args.file, args.repeats)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "file": args.file,
            "repeats": args.repeats,
            "cpu_count": os.cpu_count(),
            "load_average_1min_after": round(os.getloadavg()[0], 2),  # other work on the machine
            "readers": results,
        }
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
