"""Fetch official dataset files once, verified by checksum."""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

from .splits import DatasetError, DatasetUnavailable


def file_digest(path: Path, algorithm: str = "md5") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_root(name: str) -> Path:
    """Where datasets without a dataPath are kept: $NAS_DATA_DIR or ~/.cache/nas-operator."""
    base = os.environ.get("NAS_DATA_DIR") or Path.home() / ".cache" / "nas-operator" / "datasets"
    return Path(base) / name


def fetch(urls: list[str], destination: Path, md5: str, timeout: float = 60.0) -> Path:
    """Return `destination`, downloading it from the first URL that works when it is
    missing or its MD5 differs. A download is written beside it and renamed only once
    its checksum matches."""
    if destination.exists() and file_digest(destination) == md5:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    errors = []
    for url in urls:
        try:
            print(f"downloading {url}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=timeout) as response, \
                    open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as err:
            errors.append(f"{url}: {err}")
            continue
        got = file_digest(partial)
        if got != md5:
            errors.append(f"{url}: md5 {got}, expected {md5}")
            partial.unlink(missing_ok=True)
            continue
        partial.replace(destination)
        return destination
    partial.unlink(missing_ok=True)
    raise DatasetUnavailable(f"could not fetch {destination.name} ({'; '.join(errors)}); put the "
                       f"file under {destination.parent} or set trainer.dataPath")


def extract_tar(archive: Path, into: Path) -> None:
    """Extract a tar archive, refusing members that would land outside `into`."""
    with tarfile.open(archive) as tar:
        root = into.resolve()
        for member in tar.getmembers():
            if not (root / member.name).resolve().is_relative_to(root):
                raise DatasetError(f"{archive} has an unsafe member {member.name!r}")
        tar.extractall(into)
