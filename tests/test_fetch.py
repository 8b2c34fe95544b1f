"""`merlib fetch` against a real HTTP server on 127.0.0.1 serving a Zenodo-shaped record and tiny archives.

The archives have the real layouts (RAVDESS: ``Actor_XX/…`` inside each zip; ACE:
``ACE_Corpus_RIRN_Mobile/Mobile/<Room>/<pos>/…`` inside the tbz2) and the records list extra files (song
archives, other ACE arrays) that must never be requested. Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf

from merlib.cli import main
from merlib.data import ace, fetch as F
from merlib.data.mirror import ZenodoMirror
from merlib.data.ravdess import clip_items, scan

RAVDESS, ACE = F.RECORDS["ravdess"], F.RECORDS["ace"]
AUDIO_KEY = "Audio_Speech_Actors_01-24.zip"
ACTORS = (1, 2)
CLIPS = 3  # per actor


def _wav_bytes(channels: int = 1, seconds: float = 0.02, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    x = 0.1 * np.random.default_rng(seed).standard_normal((int(48000 * seconds), channels))
    sf.write(buf, x.astype(np.float32), 48000, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2018, 4, 5, 0, 0, 0)), data)
    return buf.getvalue()


def _tbz2(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """{"ravdess": {key: bytes}, "ace": {key: bytes}, "members": {archive key: {member: bytes}}}."""
    from merlib.data.media import copy_video_stream, write_av

    work = tmp_path_factory.mktemp("media")
    frames = np.zeros((6, 32, 32, 3), np.uint8)
    frames[:, 8:24, 8:24] = 200
    write_av(work / "av.mp4", frames, 30, audio=np.zeros(4800, np.float32), sample_rate=48000)
    copy_video_stream(work / "av.mp4", work / "v.mp4")
    av_bytes, v_bytes = (work / "av.mp4").read_bytes(), (work / "v.mp4").read_bytes()

    members: dict[str, dict[str, bytes]] = {AUDIO_KEY: {}}
    for actor in ACTORS:
        items = clip_items(actor)[:CLIPS]
        for i, item in enumerate(items):
            members[AUDIO_KEY][f"Actor_{actor:02d}/{item.filename(3)}"] = _wav_bytes(seed=10 * actor + i)
        members[f"Video_Speech_Actor_{actor:02d}.zip"] = {
            **{f"Actor_{actor:02d}/{item.filename(1)}": av_bytes for item in items},
            **{f"Actor_{actor:02d}/{item.filename(2)}": v_bytes for item in items},
        }
    ravdess = {key: _zip(m) for key, m in members.items()}
    ravdess["Audio_Song_Actors_01-24.zip"] = _zip({"Actor_01/03-02-01-01-01-01-01.wav": _wav_bytes()})
    ravdess["Video_Song_Actor_01.zip"] = _zip({"Actor_01/01-02-01-01-01-01-01.mp4": av_bytes})

    rirs = {}
    for i, room in enumerate(ace.ACE_ROOMS):
        for pos in (1, 2):
            name = f"ACE_Corpus_RIRN_Mobile/Mobile/{room.relative_path(pos).as_posix()}"
            rirs[name] = _wav_bytes(channels=3, seconds=0.01, seed=100 + 2 * i + pos)
    members["ACE_Corpus_RIRN_Mobile.tbz2"] = rirs
    ace_files = {"ACE_Corpus_RIRN_Mobile.tbz2": _tbz2(rirs), "ACE_Corpus_RIRN_Single.tbz2": b"not needed",
                 "ACE_Corpus_instructions_v01.pdf": b"%PDF-1.4"}
    return {"ravdess": ravdess, "ace": ace_files, "members": members}


@pytest.fixture
def mirror(archives):
    with ZenodoMirror({RAVDESS: archives["ravdess"], ACE: archives["ace"]},
                      licences={RAVDESS: "cc-by-nc-sa-4.0"}) as m:
        yield m


def _fetch(mirror, dataset, to, lines=None, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("retry_wait", 0.0)
    log = lines.append if lines is not None else (lambda s: None)
    return F.fetch(dataset, to, zenodo_url=mirror.url, log=log, **kw)


def test_full_fetch_ravdess_with_video_gives_the_scan_layout(mirror, archives, tmp_path):
    lines: list[str] = []
    result = _fetch(mirror, "ravdess", tmp_path / "RAVDESS", lines, video=True, actors="1-2")
    root = tmp_path / "RAVDESS"
    assert sorted(result.fetched) == ["ravdess/audio-speech", "ravdess/video-speech-01", "ravdess/video-speech-02"]
    assert (root / "Audio_Speech_Actors_01-24" / "Actor_01").is_dir()
    assert (root / "Video_Speech_Actor_02" / "Actor_02").is_dir()
    found = scan(root)
    assert found.actors == list(ACTORS)
    assert len(found.complete()) == len(ACTORS) * CLIPS and not found.missing_partner and not found.skipped
    # the licence comes before the first download, from the record's metadata
    lic = next(i for i, s in enumerate(lines) if s.startswith("Licence:"))
    first = next(i for i, s in enumerate(lines) if "downloading" in s)
    assert lic < first and "CC BY-NC-SA 4.0" in lines[lic]
    # only the wanted archives were requested (no song, no other actor), each once; archives then deleted
    keys = sorted(r.path.split("/")[-2] for r in mirror.content_requests())
    assert keys == [AUDIO_KEY, "Video_Speech_Actor_01.zip", "Video_Speech_Actor_02.zip"]
    assert not (root / F.DOWNLOAD_DIR).exists()
    state = json.loads((root / F.STATE_FILE).read_text())
    entry = state["items"]["ravdess/audio-speech"]
    assert entry["md5"] == mirror.md5(RAVDESS, AUDIO_KEY) and entry["extracted"] == ["Audio_Speech_Actors_01-24"]
    assert not list(root.glob(".extract-*"))


def test_full_fetch_ace_is_found_by_mobile_dir(mirror, tmp_path):
    lines: list[str] = []
    _fetch(mirror, "ace", tmp_path / "ACE", lines)
    mobile = ace.mobile_dir(tmp_path / "ACE")
    assert mobile == tmp_path / "ACE" / "ACE_Corpus_RIRN_Mobile" / "Mobile"
    rirs = ace.load_ace_rirs(tmp_path / "ACE", position=1, sample_rate=None)
    assert len(rirs) == 7 and all(r.shape[0] == 3 for r in rirs.values())
    assert [r.path.split("/")[-2] for r in mirror.content_requests()] == ["ACE_Corpus_RIRN_Mobile.tbz2"]
    assert any(s.startswith("Licence:") and "not stated" in s for s in lines)  # no licence in this record


def test_interrupted_then_resumed_is_byte_identical(mirror, archives, tmp_path):
    data = archives["ravdess"][AUDIO_KEY]
    cut = len(data) // 3
    mirror.cut_after(AUDIO_KEY, cut)
    root = tmp_path / "R"
    with pytest.raises(F.FetchError, match="run the same command again to resume") as err:
        _fetch(mirror, "ravdess", root, retries=0, keep_archives=True)
    assert AUDIO_KEY in str(err.value)
    partial = root / F.DOWNLOAD_DIR / (AUDIO_KEY + ".partial")
    assert partial.stat().st_size == cut
    assert not (root / "Audio_Speech_Actors_01-24").exists()  # nothing extracted from a partial file

    lines: list[str] = []
    _fetch(mirror, "ravdess", root, lines, retries=0, keep_archives=True)
    requests = mirror.content_requests(AUDIO_KEY)
    assert [r.range for r in requests] == [None, f"bytes={cut}-"]
    assert any("resuming" in s for s in lines)
    assert (root / F.DOWNLOAD_DIR / AUDIO_KEY).read_bytes() == data
    for name, content in archives["members"][AUDIO_KEY].items():
        assert (root / "Audio_Speech_Actors_01-24" / name).read_bytes() == content


def test_dropped_connection_is_resumed_within_the_run(mirror, archives, tmp_path):
    mirror.cut_after(AUDIO_KEY, 1000)
    lines: list[str] = []
    _fetch(mirror, "ravdess", tmp_path / "R", lines, retries=2)
    assert [r.range for r in mirror.content_requests(AUDIO_KEY)] == [None, "bytes=1000-"]
    assert any("connection lost at 1000" in s for s in lines)
    assert len(scan(tmp_path / "R").clips) == len(ACTORS) * CLIPS


def test_busy_server_is_retried_and_a_missing_file_is_not(mirror, tmp_path):
    mirror.fail_next(AUDIO_KEY, 503)
    lines: list[str] = []
    _fetch(mirror, "ravdess", tmp_path / "R", lines, retries=1)
    assert any("HTTP 503" in s for s in lines) and len(mirror.content_requests(AUDIO_KEY)) == 2
    mirror.fail_next("Video_Speech_Actor_01.zip", 404)
    with pytest.raises(F.FetchError, match="HTTP 404"):
        _fetch(mirror, "ravdess", tmp_path / "R", video=True, actors="1", retries=3)
    assert len(mirror.content_requests("Video_Speech_Actor_01.zip")) == 1


def test_server_without_range_support_starts_over(archives, tmp_path):
    with ZenodoMirror({RAVDESS: archives["ravdess"]}, ignore_range=True) as m:
        m.cut_after(AUDIO_KEY, 2000)
        lines: list[str] = []
        _fetch(m, "ravdess", tmp_path / "R", lines, retries=1)
        assert any("ignored the range request" in s for s in lines)
    assert len(scan(tmp_path / "R").clips) == len(ACTORS) * CLIPS


def test_corrupted_archive_fails_its_checksum_and_nothing_is_extracted(mirror, archives, tmp_path):
    key = "Video_Speech_Actor_02.zip"
    mirror.corrupt(key)
    root = tmp_path / "R"
    with pytest.raises(F.ChecksumError) as err:
        _fetch(mirror, "ravdess", root, video=True, actors="1-2")
    message = str(err.value)
    assert key in message and mirror.md5(RAVDESS, key) in message and "deleted" in message.lower()
    assert not (root / "Video_Speech_Actor_02").exists()
    downloads = root / F.DOWNLOAD_DIR
    assert not downloads.exists() or not any(downloads.iterdir())  # the partial file was deleted
    # the other archives went on; a second run (server fixed) fetches only the failed one
    assert (root / "Video_Speech_Actor_01" / "Actor_01").is_dir()
    mirror.corrupt(key, on=False)
    before = len(mirror.content_requests())
    result = _fetch(mirror, "ravdess", root, video=True, actors="1-2")
    assert result.fetched == ["ravdess/video-speech-02"]
    assert [r.path.split("/")[-2] for r in mirror.content_requests()[before:]] == [key]


def test_repeated_fetch_does_no_work(mirror, tmp_path):
    _fetch(mirror, "ravdess", tmp_path / "R", video=True, actors="1")
    n = len(mirror.requests)
    lines: list[str] = []
    result = _fetch(mirror, "ravdess", tmp_path / "R", lines, video=True, actors="1")
    assert result.nothing_to_do and len(mirror.requests) == n  # not even the records API
    assert "already fetched" in lines[0] and "nothing to do" in lines[0]
    # asking for one more actor fetches only that archive
    result = _fetch(mirror, "ravdess", tmp_path / "R", video=True, actors="1-2")
    assert result.fetched == ["ravdess/video-speech-02"]


def test_unreachable_host_fails_fast_naming_the_url(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    t0 = time.time()
    with pytest.raises(F.FetchError) as err:
        F.fetch("ravdess", tmp_path / "R", video=True, zenodo_url=url, progress=False, log=lambda s: None)
    assert time.time() - t0 < 5
    message = str(err.value)
    assert f"{url}/api/records/{RAVDESS}" in message
    assert "Video_Speech_Actor_01.zip" in message and "merlib check-data" in message
    assert "Audio_Speech_Actors_01-24/Actor_01/" in message and "https://zenodo.org/records/1188976" in message
    assert not (tmp_path / "R").exists()  # a failed run leaves nothing behind


def test_refuses_a_target_inside_the_repository(tmp_path):
    repo = F.repo_root()
    if repo is None:
        pytest.skip("merlib is not running from a source checkout")
    inside = repo / "merlib-fetch-test-should-not-exist"
    with pytest.raises(F.FetchError, match="inside the merlib source checkout"):
        F.fetch("ravdess", inside, zenodo_url="http://127.0.0.1:9", log=lambda s: None)
    assert not inside.exists()
    assert F.check_target(repo / "data" / "RAVDESS") == (repo / "data" / "RAVDESS").resolve()
    assert F.check_target(tmp_path) == tmp_path.resolve()


def test_folder_in_the_way_is_not_overwritten(mirror, tmp_path):
    (tmp_path / "R" / "Audio_Speech_Actors_01-24").mkdir(parents=True)
    with pytest.raises(F.FetchError, match="check-data"):
        _fetch(mirror, "ravdess", tmp_path / "R")
    assert mirror.requests == []  # refused before any request


def test_archive_missing_from_the_record_is_named(mirror, tmp_path):
    with pytest.raises(F.FetchError, match="lists no file Video_Speech_Actor_03.zip") as err:
        _fetch(mirror, "ravdess", tmp_path / "R", video=True, actors="3")
    assert "Audio_Speech_Actors_01-24.zip" in str(err.value)  # what the record does list
    assert mirror.content_requests() == []


def test_unsafe_archive_members_are_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_zip({"Actor_01/../../evil.wav": b"x"}))
    with pytest.raises(F.FetchError, match="unsafe"):
        F.extract_archive(bad, tmp_path, "bad")
    assert not (tmp_path / "bad").exists() and not (tmp_path.parent / "evil.wav").exists()


def test_record_parsing_tolerates_both_file_listings():
    entry = {"key": "a.zip", "size": 3, "checksum": "md5:ABC", "links": {"self": "/api/records/1/files/a.zip/content"},
             "extra": {"anything": 1}}
    legacy = F.parse_record({"id": 1, "metadata": {"title": "T", "license": {"id": "cc-by-4.0"}}, "files": [entry]},
                            "http://h")
    rdm = F.parse_record({"id": 1, "files": {"enabled": True, "entries": {"a.zip": entry}},
                          "metadata": {"rights": [{"id": "cc-by-nd-4.0"}]}}, "http://h")
    assert legacy.files == rdm.files == (F.RemoteFile("a.zip", 3, "abc", "http://h/api/records/1/files/a.zip/content"),)
    assert (legacy.licence, rdm.licence) == ("CC BY 4.0", "CC BY-ND 4.0")
    with pytest.raises(F.FetchError, match="without key, size, md5"):
        F.parse_record({"files": [{"key": "a.zip", "size": 3, "checksum": "sha256:00", "links": {"self": "x"}}]})


def test_parse_actors():
    assert F.parse_actors("1-3,7") == [1, 2, 3, 7]
    assert F.parse_actors(None) == list(range(1, 25))
    assert F.parse_actors(" 24 ") == [24]
    for bad in ("0-3", "25", "3-1", "a"):
        with pytest.raises(ValueError, match="--actors"):
            F.parse_actors(bad)


def test_cli_fetch_then_again(mirror, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MERLIB_ZENODO_URL", mirror.url)
    assert main(["fetch", "ace", "--to", str(tmp_path / "ACE"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Licence:" in out and "merlib check-data" in out
    assert main(["fetch", "ace", "--to", str(tmp_path / "ACE"), "--no-progress"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    monkeypatch.setenv("MERLIB_ZENODO_URL", "http://127.0.0.1:9")  # discard port: refused
    assert main(["fetch", "ravdess", "--to", str(tmp_path / "R"), "--no-progress"]) == 1
    assert "could not reach http://127.0.0.1:9/api/records/1188976" in capsys.readouterr().err
