"""Fetch the official MS MARCO files into ``dataset_dir`` (config ``download: true``).

A source (config ``download_sources``: name -> ``{url, md5, sha256, size, files}``) is one URL that provides
one or more official file names:

- ``.tar.gz`` / ``.tgz``: the archive's members whose base name is listed in ``files`` are extracted;
- ``.gz``: decompressed into the single listed file;
- anything else: the body is the single listed file.

The body is downloaded into a partial file (``partial_dir``), resumed with an HTTP Range request where the
server allows it, then checked against ``size``, ``md5`` and ``sha256`` where those are known (null = unknown).
Files are unpacked into temporary siblings and moved into place only when every listed file is complete, so an
interrupted or failed download never leaves a file that looks complete. The partial download is deleted on
success.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download that failed or did not match its expected size/checksum."""


def _kind(url: str) -> str:
    path = urllib.request.urlparse(url).path.lower()
    if path.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if path.endswith(".gz"):
        return "gz"
    return "plain"


def _hash_file(path: Path, hashes: dict) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashes.values():
                h.update(chunk)


def fetch(
    url: str,
    dest: str | os.PathLike,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` (resuming a partial ``dest``), then verify size and checksums.

    A file that fails verification is deleted and DownloadError names the URL, what was expected and what came.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    hashes = {"md5": hashlib.md5(), "sha256": hashlib.sha256()}
    have = dest.stat().st_size if dest.exists() else 0
    if size is not None and have > size:
        dest.unlink()
        have = 0
    req = urllib.request.Request(url, headers={"User-Agent": "ftstudy-download/1"})
    if have and (size is None or have < size):
        req.add_header("Range", f"bytes={have}-")
    try:
        if size is not None and have == size:
            resp = None  # complete already; only verify
        else:
            resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (URLs come from config)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range not satisfiable: the partial file is already complete
            resp = None
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"{url}: cannot connect ({exc})") from None
    if resp is not None:
        with resp:
            resumed = have and resp.status == 206
            if not resumed:
                have = 0
            else:
                _hash_file(dest, hashes)
            total = resp.length + have if resp.length is not None else size
            log.info("downloading %s -> %s (%s bytes%s)", url, dest, total, f", resuming at {have}" if resumed else "")
            with (
                open(dest, "ab" if resumed else "wb") as out,
                tqdm(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    file=sys.stderr,
                    disable=not progress,
                ) as bar,
            ):
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    bar.update(len(chunk))
    else:
        _hash_file(dest, hashes)
    got_size = dest.stat().st_size
    problems = []
    if size is not None and got_size != size:
        problems.append(f"size {got_size} bytes, expected {size}")
    for name, want in (("md5", md5), ("sha256", sha256)):
        if want and hashes[name].hexdigest() != want.lower():
            problems.append(f"{name} {hashes[name].hexdigest()}, expected {want.lower()}")
    if problems:
        dest.unlink(missing_ok=True)
        raise DownloadError(f"{url}: " + "; ".join(problems) + " (the download was deleted; run again)")
    log.info("%s: %d bytes, md5 %s, sha256 %s", url, got_size, hashes["md5"].hexdigest(), hashes["sha256"].hexdigest())
    return dest


def _tmp_beside(target: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def unpack(archive: str | os.PathLike, url: str, files: list[str], dataset_dir: str | os.PathLike) -> list[Path]:
    """Unpack ``archive`` (kind from ``url``) into ``dataset_dir``: exactly ``files``, moved into place together."""
    archive, out_dir = Path(archive), Path(dataset_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = _kind(url)
    if kind != "tar.gz" and len(files) != 1:
        raise DownloadError(f"{url}: a {kind} source provides one file, but files lists {files}")
    staged: dict[str, Path] = {}
    try:
        if kind == "tar.gz":
            wanted = set(files)
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:  # streaming: members are read in archive order
                    base = os.path.basename(member.name)
                    if not member.isfile() or base not in wanted or base in staged:
                        continue
                    tmp = _tmp_beside(out_dir / base)
                    staged[base] = tmp
                    src = tar.extractfile(member)
                    with src, open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
            missing = sorted(wanted - set(staged))
            if missing:
                raise DownloadError(f"{url}: the archive has no member named {missing} (expected files {files})")
        else:
            tmp = _tmp_beside(out_dir / files[0])
            staged[files[0]] = tmp
            opener = gzip.open if kind == "gz" else open
            with opener(archive, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    except BaseException as exc:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        if isinstance(exc, (tarfile.TarError, gzip.BadGzipFile, EOFError)):
            raise DownloadError(f"{url}: cannot unpack {archive} ({exc})") from None
        raise
    out = []
    for name, tmp in staged.items():
        target = out_dir / name
        os.replace(tmp, target)
        out.append(target)
    log.info("%s: unpacked %s into %s", url, sorted(staged), out_dir)
    return out


def download_source(
    name: str,
    source: dict,
    dataset_dir: str | os.PathLike,
    partial_dir: str | os.PathLike,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[Path]:
    """Fetch one ``download_sources`` entry and unpack its ``files`` into ``dataset_dir``."""
    url = source["url"]
    partial = Path(partial_dir) / (os.path.basename(urllib.request.urlparse(url).path) or name)
    fetch(
        url,
        partial,
        md5=source.get("md5"),
        sha256=source.get("sha256"),
        size=source.get("size"),
        timeout=timeout,
        progress=progress,
    )
    out = unpack(partial, url, list(source["files"]), dataset_dir)
    partial.unlink(missing_ok=True)
    try:
        Path(partial_dir).rmdir()
    except OSError:
        pass
    return out
