"""Downloading speechocean762: a mini corpus in the OpenSLR layout, served locally

The mini corpus takes 4 train and 4 test speakers (10 files each) of the real
corpus, converted to 16-bit WAV with ".WAV" extensions as in the OpenSLR
tarball, under a top-level "speechocean762/" folder.
"""

import hashlib
import http.server
import io
import tarfile
import threading
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from torchcodec.decoders import AudioDecoder

from pyannote_embloss.data.protocols import DownloadError, download, get_protocol, prepare
from pyannote_embloss.data.protocols import speechocean762 as so
from pyannote_embloss.data.protocols.download import find_root
from pyannote_embloss.data.protocols.writer import seconds

UTT_KEYED = ("wav.scp", "utt2spk", "text")
SPK_KEYED = ("spk2utt", "spk2gender", "spk2age")
NUM_SPEAKERS = 4  # per official split


def write_wav(source: Path, destination: Path) -> None:
    """Convert an audio file to 16-bit PCM WAV (lossless for 16-bit FLAC)"""
    samples = AudioDecoder(str(source)).get_all_samples()
    pcm = np.clip(np.round(samples.data.numpy().T * 32768), -32768, 32767).astype("<i2")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(destination), "wb") as file:
        file.setnchannels(pcm.shape[1])
        file.setsampwidth(2)
        file.setframerate(samples.sample_rate)
        file.writeframes(pcm.tobytes())


def mini_corpus(source: Path, destination: Path) -> Path:
    """Copy NUM_SPEAKERS speakers per split of `source` into `destination`, as WAV"""
    for split in ("train", "test"):
        utt2spk = dict(line.split() for line in (source / split / "utt2spk").read_text().splitlines())
        kept_speakers = sorted(set(utt2spk.values()))[:NUM_SPEAKERS]
        kept_utts = {utt for utt, speaker in utt2spk.items() if speaker in kept_speakers}
        (destination / split).mkdir(parents=True)
        for name in UTT_KEYED + SPK_KEYED:
            if not (source / split / name).is_file():
                continue
            keys = kept_utts if name in UTT_KEYED else set(kept_speakers)
            lines = [line for line in (source / split / name).read_text().splitlines() if line.split()[0] in keys]
            if name == "wav.scp":
                lines = [line.replace(".flac", ".WAV") for line in lines]
                for line in lines:
                    relative = line.split()[1]
                    write_wav(source / relative.replace(".WAV", ".flac"), destination / relative)
            (destination / split / name).write_text("".join(f"{line}\n" for line in lines))
    (destination / "WAVE" / ".DS_Store").write_bytes(b"\0")  # the original has some
    return destination


def targz(directory: Path, archive: Path, arcname: str, extra: dict = None) -> Path:
    """tar.gz `directory` as `arcname`/, plus `extra` {member name: bytes}"""
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(directory, arcname=arcname)
        for name, data in (extra or dict()).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves `files` {path: bytes}; "truncated" paths close the connection mid-body"""

    files: dict = dict()

    def do_GET(self):
        data = self.files.get(self.path.split("?")[0])
        if data is None:
            self.send_error(404)
            return
        truncated = "truncated" in self.path
        self.send_response(200)
        if "no-length" not in self.path:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if truncated else data)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def archives(corpus_root, tmp_path_factory):
    """{name: bytes} of the archives served"""
    work = tmp_path_factory.mktemp("archives")
    corpus = mini_corpus(corpus_root, work / "corpus")
    good = targz(corpus, work / "good.tar.gz", "speechocean762", extra={"README.txt": b"speechocean762\n"}).read_bytes()
    corrupt = bytearray(good)
    middle = len(corrupt) // 2
    corrupt[middle : middle + 4096] = bytes(b ^ 0xFF for b in corrupt[middle : middle + 4096])
    (corpus / "test" / "wav.scp").unlink()
    no_test = targz(corpus, work / "no-test.tar.gz", "speechocean762").read_bytes()
    (corpus / "test" / "wav.scp").write_text("")
    evil = targz(corpus, work / "evil.tar.gz", "speechocean762", extra={"../evil.txt": b"gotcha"}).read_bytes()
    return {
        "good": good,
        "corrupt": bytes(corrupt),
        "no-test": no_test,
        "evil": evil,
    }


@pytest.fixture(scope="module")
def server(archives):
    """Base URL of a local HTTP server serving `archives`"""
    Handler.files = {f"/{name}.tar.gz": data for name, data in archives.items()}
    Handler.files["/truncated.tar.gz"] = archives["good"]
    Handler.files["/truncated-no-length.tar.gz"] = archives["good"]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_then_prepare(server, archives, corpus_root, tmp_path):
    parent = tmp_path / "downloads"
    md5 = hashlib.md5(archives["good"]).hexdigest()
    root = download(parent / "speechocean762", f"{server}/good.tar.gz", md5=md5)

    assert root == (parent / "speechocean762").resolve()
    assert sorted(p.name for p in parent.iterdir()) == ["speechocean762"]  # no temporary file left
    assert sorted(p.name for p in root.iterdir()) == ["WAVE", "test", "train"]
    assert len(list(root.glob("WAVE/SPEAKER*/*.WAV"))) == 2 * NUM_SPEAKERS * 10
    assert so.is_corpus_root(root)

    yml = prepare(root=root, output_dir=tmp_path / "protocol", num_development_speakers=2)
    assert "WAVE/{uri}.WAV" in yml.read_text()
    protocol = get_protocol(so.PROTOCOL, database_yml=yml)
    files = {subset: list(getattr(protocol, subset)()) for subset in ("train", "development", "test")}
    assert {s: len(f) for s, f in files.items()} == {"train": 40, "development": 20, "test": 20}
    speakers = {s: {f["annotation"].labels()[0] for f in fs} for s, fs in files.items()}
    assert {s: len(v) for s, v in speakers.items()} == {"train": 4, "development": 2, "test": 2}
    assert not speakers["development"] & speakers["test"]
    for subset in ("development", "test"):
        assert Counter(int(t["reference"]) for t in getattr(protocol, f"{subset}_trial")()) == {1: 90, 0: 90}

    file = files["train"][0]
    assert Path(file["audio"]) == root / "WAVE" / f"{file['uri']}.WAV"
    original = AudioDecoder(str(corpus_root / "WAVE" / f"{file['uri']}.flac")).metadata
    assert file["annotated"].extent().end == float(seconds(original.duration_seconds_from_header))


def test_download_keeps_existing_corpus(server, tmp_path):
    root = download(tmp_path / "speechocean762", f"{server}/good.tar.gz")
    # already there: no network access (this URL would fail)
    assert download(root, "http://127.0.0.1:9/nothing.tar.gz") == root


def test_prepare_downloads_when_not_found(server, tmp_path, monkeypatch):
    monkeypatch.delenv(so.ENV_VAR, raising=False)
    monkeypatch.setattr(so, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "out"
    yml = prepare(output_dir=output, download=True, url=f"{server}/good.tar.gz", num_development_speakers=2)
    assert so.is_corpus_root(output / "corpus")
    assert f"{output / 'corpus' / 'WAVE'}/{{uri}}.WAV" in yml.read_text()
    # next time, the downloaded corpus is found without downloading
    before = yml.read_bytes()
    assert prepare(output_dir=output, url="http://127.0.0.1:9/x", num_development_speakers=2) == yml
    assert yml.read_bytes() == before


@pytest.mark.parametrize(
    "path, match",
    [
        ("truncated.tar.gz", "interrupted: the connection was closed after"),
        ("truncated-no-length.tar.gz", "corrupt or truncated"),
        ("corrupt.tar.gz", "corrupt or truncated"),
        ("no-test.tar.gz", "expected layout.*test/wav.scp"),
        ("evil.tar.gz", "Could not unpack"),
        ("missing.tar.gz", "HTTP error 404"),
    ],
)
def test_download_failures_leave_nothing(server, tmp_path, path, match):
    parent = tmp_path / "downloads"
    with pytest.raises(DownloadError, match=match):
        download(parent / "speechocean762", f"{server}/{path}")
    assert list(parent.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_download_md5_mismatch(server, tmp_path):
    parent = tmp_path / "downloads"
    with pytest.raises(DownloadError, match="md5"):
        download(parent / "speechocean762", f"{server}/good.tar.gz", md5="0" * 32)
    assert list(parent.iterdir()) == []


def test_download_refuses_non_empty_destination(server, tmp_path):
    (tmp_path / "speechocean762").mkdir()
    (tmp_path / "speechocean762" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an empty directory"):
        download(tmp_path / "speechocean762", f"{server}/good.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speechocean762"]
    assert (tmp_path / "speechocean762" / "mine.txt").read_text() == "keep me"


def test_unreachable_server(tmp_path):
    with pytest.raises(DownloadError, match="Could not reach"):
        download(tmp_path / "speechocean762", "http://127.0.0.1:9/x.tar.gz", timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_download_from_file_url(archives, tmp_path):
    archive = tmp_path / "speechocean762.tar.gz"
    archive.write_bytes(archives["good"])
    root = download(tmp_path / "corpus", archive.as_uri())
    assert so.is_corpus_root(root) and (root / "WAVE").is_dir()


@pytest.mark.parametrize(
    "names, prefix",
    [
        (["train/wav.scp", "test/wav.scp", "WAVE/S1/x.WAV"], ""),
        (["./c/train/wav.scp", "./c/test/wav.scp", "./c/WAVE/", "README"], "c/"),
        (["a/b/train/wav.scp", "a/b/test/wav.scp", "a/b/WAVE", "a/train/wav.scp"], "a/b/"),
    ],
)
def test_find_root(names, prefix):
    assert find_root(names, so.LAYOUT) == prefix


def test_find_root_reports_missing_layout():
    with pytest.raises(DownloadError, match="no folder contains all of train/wav.scp, test/wav.scp, WAVE/"):
        find_root(["c/train/wav.scp", "c/test/wav.scp", "c/wave/x.wav"], so.LAYOUT)
