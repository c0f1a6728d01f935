"""The download of the real Google Speech Commands: pinned SHA-256, resumable, safely extracted.

:func:`download_speech_commands` fetches the archive into a cache folder (continuing an
interrupted download with HTTP Range), refuses a file whose SHA-256 differs from the pinned one
(:data:`SPEECH_COMMANDS`), and extracts it member by member, refusing any member that would land
outside the destination. A finished download is marked, so later calls return at once.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["DownloadError", "SPEECH_COMMANDS", "default_cache_dir", "download_speech_commands"]


class DownloadError(RuntimeError):
    """A download failed or produced a file that does not match its pinned SHA-256.

    Notebook: notebooks/02_vq_vae.ipynb
    """


@dataclass(frozen=True)
class _Archive:
    url: str
    sha256: str
    size: int | None


#: Official Speech Commands archives. The v0.02 SHA-256 and size are those pinned by
#: TensorFlow Datasets (tensorflow/datasets, tensorflow_datasets/url_checksums/
#: speech_commands.txt: 2428923189 bytes, af14739e...), and the same SHA-256 is pinned by
#: torchaudio (torchaudio/datasets/speechcommands.py, ``_CHECKSUMS``), which is also the
#: source of the v0.01 SHA-256 (its size is not pinned anywhere we found, so it is not checked).
SPEECH_COMMANDS: dict[str, _Archive] = {
    "v0.02": _Archive(
        "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
        2_428_923_189,
    ),
    "v0.01": _Archive(
        "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
        "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
        None,
    ),
}

_CHUNK = 1 << 20
_MARKER = ".download_complete"


def default_cache_dir() -> Path:
    """Where downloads are kept: ``$SOUND_RECON_CACHE`` or ``~/.cache/sound-reconstruction``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    env = os.environ.get("SOUND_RECON_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sound-reconstruction"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, part: Path, size: int | None, progress: bool, timeout: float) -> None:
    """Download ``url`` into ``part``, continuing an existing partial file with HTTP Range."""
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # cannot be a prefix of the right file
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": "sound-reconstruction"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # "range not satisfiable": the partial file is complete
            return  # or wrong; the checksum decides
        raise
    with response:
        status = getattr(response, "status", 200)
        content_range = response.headers.get("Content-Range", "")
        if have and status == 206 and content_range.startswith(f"bytes {have}-"):
            mode = "ab"
        elif status == 206:  # a range we did not ask for: drop the partial file, retry
            part.unlink(missing_ok=True)
            raise ConnectionError(f"unexpected Content-Range {content_range!r}")
        else:  # the server ignored the Range header (200): start again from byte 0
            have, mode = 0, "wb"
        remaining = response.headers.get("Content-Length")
        total = have + int(remaining) if remaining and remaining.isdigit() else size
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                have += len(chunk)
                bar.update(len(chunk))
    if total is not None and have < total:  # http.client returns b"" when a connection drops
        raise ConnectionError(f"connection closed after {have} of {total} bytes")


def _safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Check every member stays inside ``dest``; refuse the whole archive otherwise."""
    base = dest.resolve()
    members = []
    for m in tar.getmembers():
        name = m.name
        target = (base / name).resolve()
        if (
            os.path.isabs(name)
            or ".." in PurePosixPath(name).parts
            or not target.is_relative_to(base)
        ):
            raise DownloadError(f"refusing to extract {name!r}: it escapes {dest}")
        if m.issym() or m.islnk():
            link = PurePosixPath(m.linkname)
            linked = (
                (base / link) if m.islnk() else (base / PurePosixPath(name).parent / link)
            ).resolve()
            if link.is_absolute() or not linked.is_relative_to(base):
                raise DownloadError(f"refusing to extract link {name!r} -> {m.linkname!r}")
        elif not (m.isfile() or m.isdir()):
            continue  # devices, FIFOs: never extracted
        members.append(m)
    return members


def _extract(archive: Path, dest: Path) -> None:
    """Extract into a temporary sibling folder, then rename it into place."""
    tmp = dest.with_name(dest.name + ".extracting")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _safe_members(tar, tmp)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: a second guard
                tar.extractall(tmp, members=members, filter="data")
            else:  # pragma: no cover - older Pythons
                tar.extractall(tmp, members=members)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        ours = (dest / _MARKER).is_file() or (dest.is_dir() and not any(dest.iterdir()))
        if not ours:  # never delete a folder this function did not create
            shutil.rmtree(tmp, ignore_errors=True)
            raise DownloadError(
                f"{dest} exists and is not a finished download of this function; "
                "remove it or pass another dest="
            )
        shutil.rmtree(dest)
    tmp.rename(dest)


def download_speech_commands(
    dest: str | os.PathLike | None = None,
    *,
    version: str = "v0.02",
    url: str | None = None,
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    keep_archive: bool = True,
) -> Path:
    """Download, verify and extract Google Speech Commands (for readers online, e.g. Colab).

    The archive (2.3 GiB for v0.02) is written to ``<cache_dir>/<name>.part``; an interrupted
    download continues where it stopped (HTTP Range) on the next call or retry, and starts over
    cleanly if the server ignores Range. The finished file must match the pinned SHA-256: a
    mismatch deletes it and raises :class:`DownloadError`. The archive is then extracted into
    ``dest`` (members that would land outside ``dest`` are refused), and later calls return at
    once without touching the network.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        dest: Folder to extract into (default ``<cache_dir>/speech_commands_<version>``).
        version: ``"v0.02"`` (35 words, 105,829 clips) or ``"v0.01"`` (30 words).
        url: Another address of the archive (a mirror); defaults to the official one.
        sha256: Expected SHA-256 of the archive; defaults to the pinned one of ``version``.
        cache_dir: Download folder (default :func:`default_cache_dir`).
        progress: Show a tqdm progress bar.
        retries: Further attempts after a dropped connection (each one resumes).
        timeout: Socket timeout in seconds.
        keep_archive: Keep the verified archive in ``cache_dir`` after extracting (so a
            deleted ``dest`` is restored without downloading); ``False`` saves its disk space.

    Returns:
        The dataset folder (``<word>/*.wav``, ``validation_list.txt``, ``testing_list.txt``).

    Raises:
        DownloadError: On a checksum mismatch, an unsafe archive, or when every attempt fails.
    """
    if version not in SPEECH_COMMANDS:
        raise ValueError(f"version must be one of {sorted(SPEECH_COMMANDS)}, got {version!r}")
    pinned = SPEECH_COMMANDS[version]
    official = url is None and sha256 is None
    url = url or pinned.url
    expected = (sha256 or pinned.sha256).lower()
    size = pinned.size if official else None
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    dest = Path(dest).expanduser() if dest is not None else cache / f"speech_commands_{version}"
    marker = dest / _MARKER
    if marker.is_file() and marker.read_text().strip() == expected:
        return dest

    cache.mkdir(parents=True, exist_ok=True)
    name = PurePosixPath(urllib.request.urlparse(url).path).name or f"speech_commands_{version}"
    archive = cache / name
    part = cache / (name + ".part")
    if archive.is_file() and _sha256(archive) != expected:
        archive.unlink()  # stale or damaged: fetch again
    if not archive.is_file():
        for attempt in range(retries + 1):
            try:
                _fetch(url, part, size, progress, timeout)
                break
            except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
                if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                    raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
                if attempt == retries:
                    raise DownloadError(
                        f"{url}: download failed after {retries + 1} attempt(s): {exc}; "
                        f"{part} is kept, call again to resume"
                    ) from exc
        got = _sha256(part)
        if got != expected:
            n = part.stat().st_size
            part.unlink()
            raise DownloadError(
                f"{url}: SHA-256 mismatch, expected {expected}, got {got} ({n} bytes"
                + (f", expected {size}" if size else "")
                + f"); the bad file {part} was deleted. Try again; if it persists the server "
                "or a proxy serves another file."
            )
        os.replace(part, archive)
    _extract(archive, dest)
    marker.write_text(expected + "\n")
    if not keep_archive:
        archive.unlink()
    return dest
