"""Tests of data_prep's downloads against a local HTTP server on 127.0.0.1.

The server serves fixture files the tests build (a zip shaped like ml-1m.zip, KG files); no
test touches the internet. SOURCES is replaced by fixture sources whose checksums are those of
the fixtures, and MKR_DOWNLOAD_BASE_URL points every download at the local server.
"""

import hashlib
import http.server
import io
import json
import pathlib
import socket
import threading
import zipfile

import pytest

import data_prep
from data_prep import download

RATINGS = "1::10::5::0\n1::20::2::0\n2::20::4::0\n2::30::5::0\n"
ITEM_MAP = "10\te10\n20\te20\n30\te30\n40\te40\n"
KG = "".join(f"e{item}\tgenre\tg{item % 3}\n" for item in (10, 20, 30, 40)) * 50


def zip_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


ARCHIVE = zip_bytes({"ml-1m/ratings.dat": RATINGS, "ml-1m/README": "fixture"})


class Server:
    """Serves `files` (URL path -> bytes) with Range support, recording each request."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.truncate_once: set[str] = set()
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):

            def do_GET(self):
                range_header = self.headers.get("Range")
                state.requests.append((self.path, range_header))
                body = state.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(range_header.split("=")[1].split("-")[0]) if range_header else 0
                if start >= len(body) > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if range_header else 200)
                if range_header:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.path in state.truncate_once:
                    state.truncate_once.discard(self.path)
                    payload = payload[:len(payload) // 2]  # then the connection closes
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def server():
    running = Server()
    running.files = {"/movielens/ml-1m.zip": ARCHIVE, "/movie/item_index2entity_id.txt":
                     ITEM_MAP.encode(), "/movie/kg.txt": KG.encode()}
    yield running
    running.close()


@pytest.fixture
def sources(monkeypatch, server):
    """Fixture sources with pinned digests of the fixture KG files, served by `server`."""
    fixture_sources = {
        "movie": {
            "ratings.dat": download.Source(download.GROUPLENS, "movielens/ml-1m.zip",
                                           member="ratings.dat"),
            "item_index2entity_id.txt": download.Source(
                download.MKR_DATA, "movie/item_index2entity_id.txt",
                sha256=hashlib.sha256(ITEM_MAP.encode()).hexdigest()),
            "kg.txt": download.Source(download.MKR_DATA, "movie/kg.txt",
                                      sha256=hashlib.sha256(KG.encode()).hexdigest()),
        },
        "book": {"BX-Book-Ratings.csv": download.Source(download.MKR_DATA,
                                                        "book/BX-Book-Ratings.csv")},
    }
    monkeypatch.setattr(download, "SOURCES", fixture_sources)
    monkeypatch.setenv(download.BASE_URL_ENV, server.url)
    return fixture_sources


def prepare(tmp_path, **kwargs):
    messages = []
    output = data_prep.prepare("movie", tmp_path / "data", tmp_path / "cache",
                               log=messages.append, **kwargs)
    return output, messages


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestDownload:

    def test_downloads_missing_files_into_the_cache(self, tmp_path, server, sources):
        output, _ = prepare(tmp_path)
        fetched = tmp_path / "cache" / "downloads" / "movie"
        assert (fetched / "ratings.dat").read_text() == RATINGS
        assert (fetched / "kg.txt").read_text() == KG
        assert not list(fetched.glob("*.part"))
        assert not (tmp_path / "data").exists()  # nothing is written into data_dir
        manifest = json.loads((tmp_path / "cache" / "downloads" / "manifest.json").read_text())
        # Only files without a pinned checksum are recorded.
        assert manifest == {"movielens/ml-1m.zip": hashlib.sha256(ARCHIVE).hexdigest()}
        assert data_prep.read_meta(output)["statistics"]["users"] == 2
        # Inputs now found: a second run neither downloads nor converts.
        server.requests.clear()
        again, messages = prepare(tmp_path)
        assert again == output and server.requests == []
        assert messages == [f"movie: up to date: {output}"]

    def test_only_missing_files_are_fetched(self, tmp_path, server, sources):
        (tmp_path / "data" / "movie").mkdir(parents=True)
        (tmp_path / "data" / "movie" / "kg.txt").write_text(KG)
        (tmp_path / "data" / "movie" / "item_index2entity_id.txt").write_text(ITEM_MAP)
        prepare(tmp_path)
        assert [path for path, _ in server.requests] == ["/movielens/ml-1m.zip"]

    def test_checksum_mismatch_is_a_clear_error(self, tmp_path, server, sources):
        server.files["/movie/kg.txt"] = KG.replace("genre", "GENRE").encode()
        with pytest.raises(data_prep.DataError, match=(
                r"movie/kg\.txt: sha256 [0-9a-f]{64} \(line ends as LF\) does not match the "
                r"pinned [0-9a-f]{64}; the download was deleted\. Place a verified copy of "
                r"kg\.txt in .*data/movie")):
            prepare(tmp_path)
        fetched = tmp_path / "cache" / "downloads" / "movie"
        assert not (fetched / "kg.txt").exists() and not (fetched / "kg.txt.part").exists()

    def test_crlf_copy_matches_the_pinned_checksum(self, tmp_path, server, sources):
        server.files["/movie/kg.txt"] = KG.replace("\n", "\r\n").encode()
        output, _ = prepare(tmp_path)
        assert data_prep.read_meta(output)["statistics"]["triples"] == 200

    def test_recorded_checksum_guards_later_downloads(self, tmp_path, server, sources):
        prepare(tmp_path)
        fetched = tmp_path / "cache" / "downloads" / "movie"
        (fetched / "ratings.dat").unlink()
        (fetched / "ml-1m.zip").unlink()
        server.files["/movielens/ml-1m.zip"] = zip_bytes({"ml-1m/ratings.dat": "9::10::5::0\n"})
        with pytest.raises(data_prep.DataError, match="recorded at the first download"):
            prepare(tmp_path)

    @pytest.mark.parametrize("down", [True, False])
    def test_unreachable_lists_the_files_to_place(self, tmp_path, server, sources,
                                                  monkeypatch, down):
        if down:
            monkeypatch.setenv(download.BASE_URL_ENV, f"http://127.0.0.1:{free_port()}")
        else:
            server.files.clear()  # every file answers 404
        with pytest.raises(data_prep.DataError) as raised:
            prepare(tmp_path)
        message = str(raised.value)
        assert "\n" not in message
        assert ("Connection refused" if down else "HTTP 404") in message
        assert f"Place these files in {tmp_path / 'data' / 'movie'}: ratings.dat from " in message
        assert "(the file ratings.dat inside that zip)" in message
        assert "; item_index2entity_id.txt from " in message and "; kg.txt from " in message

    def test_no_download_lists_the_files_to_place(self, tmp_path, server, sources):
        with pytest.raises(data_prep.DataError, match="downloads are disabled. Place these"):
            prepare(tmp_path, download=False)
        assert server.requests == []

    def test_partial_download_is_resumed(self, tmp_path, server, sources):
        fetched = tmp_path / "cache" / "downloads" / "movie"
        fetched.mkdir(parents=True)
        (fetched / "kg.txt.part").write_bytes(KG.encode()[:1000])
        prepare(tmp_path)
        assert ("/movie/kg.txt", "bytes=1000-") in server.requests
        assert (fetched / "kg.txt").read_text() == KG

    def test_bad_partial_download_is_redone(self, tmp_path, server, sources):
        fetched = tmp_path / "cache" / "downloads" / "movie"
        fetched.mkdir(parents=True)
        (fetched / "kg.txt.part").write_bytes(b"x" * 1000)
        (fetched / "ml-1m.zip.part").write_bytes(b"y" * 100)
        _, messages = prepare(tmp_path)
        assert [request for request in server.requests if request[0] == "/movie/kg.txt"] == [
            ("/movie/kg.txt", "bytes=1000-"), ("/movie/kg.txt", None)]
        assert (fetched / "kg.txt").read_text() == KG
        assert (fetched / "ratings.dat").read_text() == RATINGS
        assert any("starting over" in message for message in messages)

    def test_broken_transfer_is_resumed(self, tmp_path, server, sources):
        server.truncate_once.add("/movielens/ml-1m.zip")
        prepare(tmp_path)
        archive_requests = [request for request in server.requests
                            if request[0] == "/movielens/ml-1m.zip"]
        assert archive_requests == [("/movielens/ml-1m.zip", None),
                                    ("/movielens/ml-1m.zip", f"bytes={len(ARCHIVE) // 2}-")]
        assert (tmp_path / "cache" / "downloads" / "movie" / "ml-1m.zip").read_bytes() == ARCHIVE

    def test_unverifiable_partial_download_restarts(self, tmp_path, server, sources):
        server.files["/book/BX-Book-Ratings.csv"] = b'"User-ID";"ISBN";"Book-Rating"\n'
        fetched = tmp_path / "cache" / "downloads" / "book"
        fetched.mkdir(parents=True)
        (fetched / "BX-Book-Ratings.csv.part").write_bytes(b"stale")
        found = download.locate_inputs("book", tmp_path / "data", tmp_path / "cache",
                                       download=True, log=lambda message: None)
        assert server.requests == [("/book/BX-Book-Ratings.csv", None)]
        assert found["BX-Book-Ratings.csv"].read_bytes() == server.files[
            "/book/BX-Book-Ratings.csv"]

    def test_base_url_argument(self, tmp_path, server, sources, monkeypatch):
        monkeypatch.delenv(download.BASE_URL_ENV)
        found = download.locate_inputs("movie", tmp_path / "data", tmp_path / "cache",
                                       download=True, log=lambda message: None,
                                       base_url=server.url + "/")
        assert found["kg.txt"].read_text() == KG


def test_default_sources_cover_every_dataset_file():
    """Every paper dataset's inputs have a source; MKR's own repository serves the KGs."""
    for dataset, files in download.SOURCES.items():
        assert dataset in data_prep.RAW_DATASETS
        assert {"item_index2entity_id.txt", "kg.txt"} <= set(files)
        for name in ("item_index2entity_id.txt", "kg.txt"):
            assert files[name].url().startswith(
                "https://raw.githubusercontent.com/hwwang55/MKR/master/data/")


@pytest.mark.skipif(not (pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets")
                    .is_dir(), reason="../shared/datasets is absent")
def test_pinned_checksums_match_the_shared_kg_files():
    shared = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets"
    for dataset in ("movie", "music"):
        for name in ("item_index2entity_id.txt", "kg.txt"):
            data = (shared / dataset / name).read_bytes()
            assert download.normalised_sha256(data) == download.SOURCES[dataset][name].sha256
