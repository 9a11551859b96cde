"""Finds the paper datasets' input files and downloads the missing ones.

Each input is looked up in `<data_dir>/<dataset>/`, then in `<cache_dir>/downloads/<dataset>/`.
Missing ones are downloaded into the latter, never into data_dir, which may be read-only or
shared. A download goes to `NAME.part` and is renamed when complete and verified, so a broken
transfer never passes for an input; a `.part` left behind is resumed with an HTTP Range request
when the result can be verified (a pinned or recorded checksum, or a zip archive's CRCs) and
restarted otherwise.

Checksums: the KG files of MovieLens-1M and Last.FM are pinned below. The archives and the
Book-Crossing files have no published checksum, so the sha256 of their first download is
recorded in `<cache_dir>/downloads/manifest.json` and every later download must match it.
"""

import dataclasses
import hashlib
import http.client
import json
import os
import pathlib
import posixpath
import shutil
import urllib.error
import urllib.request
import zipfile

from data_prep import DataError
from data_prep import raw
from mkr_tf import files

GROUPLENS = "https://files.grouplens.org/datasets/"
# The authors' repository; its data/ folder holds the KG files of all three datasets and the
# Book-Crossing ratings exactly as the paper used them (the original Book-Crossing site is gone).
MKR_DATA = "https://raw.githubusercontent.com/hwwang55/MKR/master/data/"
# When set, every file is fetched from <this URL>/<Source.path> instead (a mirror, or tests).
BASE_URL_ENV = "MKR_DOWNLOAD_BASE_URL"
MANIFEST_FILE = "manifest.json"

_USER_AGENT = "mkr_tf-data_prep (+https://github.com/hwwang55/MKR)"
_TIMEOUT_SECONDS = 60
_ATTEMPTS = 4
_CHUNK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Source:
    """Where one input file comes from.

    Attributes:
        base: default base URL.
        path: the file's path below `base`, and below MKR_DOWNLOAD_BASE_URL when that is set.
        member: for a zip archive, the base name of the wanted file inside it.
        sha256: digest of the file with CRLF line ends turned into LF (the authors publish the
            same KG with either), or None when no digest is known in advance.
    """
    base: str
    path: str
    member: str | None = None
    sha256: str | None = None

    def url(self, base_url: str | None = None) -> str:
        return (base_url or self.base).rstrip("/") + "/" + self.path


SOURCES: dict[str, dict[str, Source]] = {
    "movie": {
        "ratings.dat": Source(GROUPLENS, "movielens/ml-1m.zip", member="ratings.dat"),
        "item_index2entity_id.txt": Source(
            MKR_DATA, "movie/item_index2entity_id.txt",
            sha256="bb0e928ee545faaa2a06a53ff2f1ba3f977459da6f253f77af42a2c71c7eb3a9"),
        "kg.txt": Source(
            MKR_DATA, "movie/kg.txt",
            sha256="89369cac78142575330707ba32dae3be1173a7dfd067f2c93b56a1e1261995e2"),
    },
    "book": {
        "BX-Book-Ratings.csv": Source(MKR_DATA, "book/BX-Book-Ratings.csv"),
        "item_index2entity_id.txt": Source(MKR_DATA, "book/item_index2entity_id.txt"),
        "kg.txt": Source(MKR_DATA, "book/kg.txt"),
    },
    "music": {
        "user_artists.dat": Source(GROUPLENS, "hetrec2011/hetrec2011-lastfm-2k.zip",
                                   member="user_artists.dat"),
        "item_index2entity_id.txt": Source(
            MKR_DATA, "music/item_index2entity_id.txt",
            sha256="496475ddc39b0e15956c58b86d0566bce96bf51c7daaa49d66bc1b9fefaeef1a"),
        "kg.txt": Source(
            MKR_DATA, "music/kg.txt",
            sha256="aa899f22a7a3b313e0baa22113fcd5fa040675fde44822152afed9900d33325f"),
    },
}


class DownloadFailed(Exception):
    """A download that could not be completed: server unreachable, HTTP error, broken transfer."""


def locate_inputs(dataset: str, data_dir: pathlib.Path, cache_dir: pathlib.Path, *,
                  download: bool, log, base_url: str | None = None) -> dict[str, pathlib.Path]:
    """Returns the path of each input file of `dataset`, downloading the missing ones.

    Args:
        dataset: a key of SOURCES.
        data_dir: holds `<dataset>/<file>` placed by the user.
        cache_dir: downloads go to `<cache_dir>/downloads/<dataset>/`.
        download: whether missing files may be downloaded.
        log: callable taking one message string.
        base_url: fetch every file from `<base_url>/<Source.path>`; default: the environment
            variable MKR_DOWNLOAD_BASE_URL, else each source's own base.

    Raises:
        DataError: a file is missing and cannot be downloaded (the message lists which files to
            place where), or a download does not match its checksum.
    """
    own_dir = data_dir / dataset
    download_dir = cache_dir / "downloads" / dataset
    found, missing = {}, []
    for name in SOURCES[dataset]:
        for folder in (own_dir, download_dir):
            path = folder / name
            # A folder or a bad link in a file's place is a mistake to name, not a missing file.
            if not path.is_file() and (path.is_symlink() or path.exists()):
                raise DataError(f"{path}: {raw.not_a_file(path)}")
        place = next((folder / name for folder in (own_dir, download_dir)
                      if (folder / name).is_file()), None)
        if place is None:
            missing.append(name)
        else:
            found[name] = place
    if not missing:
        return found
    if not download:
        raise DataError(_placement_message(dataset, missing, own_dir, "downloads are disabled",
                                           base_url))
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    try:
        download_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(_placement_message(
            dataset, missing, own_dir, f"cannot create {download_dir}: {error.strerror}",
            base_url)) from None
    manifest_path = cache_dir / "downloads" / MANIFEST_FILE
    for position, name in enumerate(missing):
        source = SOURCES[dataset][name]
        try:
            found[name] = _fetch(name, source, download_dir, own_dir, manifest_path, base_url, log)
        except DownloadFailed as error:
            raise DataError(_placement_message(dataset, missing[position:], own_dir,
                                               f"the download failed ({error})", base_url)
                            ) from None
        except OSError as error:
            raise DataError(f"{download_dir}: cannot save {name}: {error.strerror or error}"
                            ) from None
    return {name: found[name] for name in SOURCES[dataset]}


def normalised_sha256(data: bytes) -> str:
    """sha256 of text with CRLF line ends read as LF."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def _fetch(name: str, source: Source, download_dir: pathlib.Path, own_dir: pathlib.Path,
           manifest_path: pathlib.Path, base_url: str | None, log) -> pathlib.Path:
    """Downloads one input (extracting it when it comes in an archive); returns its path."""
    url = source.url(base_url)
    target = download_dir / name
    if source.member is None:
        _download(url, target, source, name, own_dir, manifest_path, log)
        return target
    archive = download_dir / posixpath.basename(source.path)
    if not archive.is_file():
        _download(url, archive, source, name, own_dir, manifest_path, log)
    try:
        _extract(archive, source.member, target, url)
    except zipfile.BadZipFile:
        # An archive damaged after it was verified: fetch it once more.
        archive.unlink()
        _download(url, archive, source, name, own_dir, manifest_path, log)
        try:
            _extract(archive, source.member, target, url)
        except zipfile.BadZipFile as error:
            raise DataError(f"{archive}: damaged zip archive ({error})") from None
    log(f"extracted {target} from {archive.name}")
    return target


def _download(url: str, target: pathlib.Path, source: Source, name: str,
              own_dir: pathlib.Path, manifest_path: pathlib.Path, log) -> None:
    """Fetches `url` into `target` through `target.part`, verifying before the rename."""
    manifest = _read_manifest(manifest_path)
    # A pinned digest is the reference; the manifest only stands in where there is none.
    recorded = None if source.sha256 else manifest.get(source.path)
    is_archive = source.member is not None
    part = target.with_name(target.name + ".part")
    if part.exists() and not (source.sha256 or recorded or is_archive):
        part.unlink()  # Nothing could tell a stale prefix from a good one.
    restarted = False
    for _ in range(_ATTEMPTS):
        offset = part.stat().st_size if part.exists() else 0
        log(f"downloading {url}" + (f" (resuming at byte {offset:,})" if offset else ""))
        if not _transfer(url, part, offset):
            continue
        data = part.read_bytes()
        problem = _verify(data, part, source, recorded, is_archive)
        if problem is None:
            os.replace(part, target)
            if source.sha256 is None and recorded is None:
                manifest[source.path] = hashlib.sha256(data).hexdigest()
                _write_manifest(manifest_path, manifest)
            log(f"saved {target} ({len(data):,} bytes)")
            return
        part.unlink()
        if offset and not restarted:
            # The resumed bytes did not fit the old ones: start over once.
            restarted = True
            log(f"{url}: resumed download failed verification ({problem}); starting over")
            continue
        raise DataError(f"{url}: {problem}; the download was deleted. Place a verified copy of "
                        f"{name} in {own_dir}, or point {BASE_URL_ENV} at a good mirror")
    raise DownloadFailed(f"{url}: the transfer broke off {_ATTEMPTS} times")


def _transfer(url: str, part: pathlib.Path, offset: int) -> bool:
    """Appends the bytes of `url` from `offset` on to `part`; True when the body is complete.

    Returns False when the transfer broke off or the server refused the range, leaving `part`
    ready for the next attempt.
    """
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            part.unlink()  # The part is longer than the file: it is no prefix of it.
            return False
        raise DownloadFailed(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise DownloadFailed(f"{url}: {getattr(error, 'reason', error)}") from None
    with response:
        resumed = response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(
                f"bytes {offset}-"):
            part.unlink(missing_ok=True)  # Not the range asked for: start over.
            return False
        length = response.headers.get("Content-Length")
        received = 0
        with open(part, "ab" if resumed else "wb") as file:
            while True:
                try:
                    chunk = response.read(_CHUNK_BYTES)
                except (http.client.HTTPException, OSError):
                    return False
                if not chunk:
                    break
                file.write(chunk)
                received += len(chunk)
    return length is None or received >= int(length)


def _verify(data: bytes, part: pathlib.Path, source: Source, recorded: str | None,
            is_archive: bool) -> str | None:
    """What is wrong with a finished download, or None."""
    if is_archive:
        try:
            with zipfile.ZipFile(part) as archive:
                damaged = archive.testzip()
        except zipfile.BadZipFile:
            return "not a valid zip archive"
        if damaged is not None:
            return f"zip archive member {damaged} is damaged"
    if source.sha256 is not None and normalised_sha256(data) != source.sha256:
        return (f"sha256 {normalised_sha256(data)} (line ends as LF) does not match the "
                f"pinned {source.sha256}")
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
        return (f"sha256 {hashlib.sha256(data).hexdigest()} does not match {recorded}, recorded "
                f"at the first download")
    return None


def _extract(archive: pathlib.Path, member: str, target: pathlib.Path, url: str) -> None:
    """Copies the archive's file named `member` (in any folder) to `target`, atomically."""
    with zipfile.ZipFile(archive) as opened:
        names = [info for info in opened.infolist()
                 if not info.is_dir() and posixpath.basename(info.filename) == member]
        if not names:
            raise DataError(f"{url}: the archive has no file named {member}")
        info = min(names, key=lambda info: len(info.filename))
        with (files.replacing(target) as temporary, opened.open(info) as source,
              open(temporary, "wb") as destination):
            shutil.copyfileobj(source, destination, _CHUNK_BYTES)


def _read_manifest(path: pathlib.Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable download manifest ({error}); delete it to record "
                        f"fresh checksums") from None


def _write_manifest(path: pathlib.Path, manifest: dict[str, str]) -> None:
    files.write_json(path, manifest)


def _placement_message(dataset: str, names: list[str], own_dir: pathlib.Path, reason: str,
                       base_url: str | None) -> str:
    """One line saying which files to put where, and where each comes from."""
    origins = []
    for name in names:
        source = SOURCES[dataset][name]
        origin = f"{name} from {source.url(base_url)}"
        if source.member:
            origin += f" (the file {source.member} inside that zip)"
        origins.append(origin)
    return (f"{dataset}: missing input files, and {reason}. Place these files in {own_dir}: "
            + "; ".join(origins))
