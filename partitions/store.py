"""Object stores chosen by URL: `file:///abs/path` (the embedded default) or `s3://bucket/prefix`.

One small interface. Writes are atomic: a reader sees the old object, the new one, or none,
never a part. Keys are validated relative paths, so nothing can escape the store's root.
"""

from __future__ import annotations

import builtins
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Protocol
from urllib.parse import unquote, urlparse

from common.disk import free_bytes, is_disk_full
from common.errors import ConfigError, DiskFull, ObjectNotFound, StoreError
from common.names import object_key

TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None  # plain here; settings hold it as SecretStr until this point
    # Bounded, so that a store that accepts connections and never answers fails the work that
    # waits on it (within about attempts x read timeout) instead of holding a worker for good.
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_attempts: int = 3

    def __repr__(self) -> str:  # never print the secret
        return f"S3Options(endpoint_url={self.endpoint_url!r}, region={self.region!r})"


class ObjectStore(Protocol):
    url: str

    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get(self, key: str) -> bytes: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def list(self, prefix: str) -> list[ObjectInfo]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


def open_store(url: str, s3: S3Options | None = None) -> ObjectStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError("FLEETLAKE_STORE_URL", f"file URLs must be file:///absolute/path, got {url!r}")
        path = unquote(parsed.path)
        if not path.startswith("/"):
            raise ConfigError("FLEETLAKE_STORE_URL", f"file URLs need an absolute path, got {url!r}")
        return LocalStore(Path(path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError("FLEETLAKE_STORE_URL", f"s3 URLs must name a bucket: s3://bucket/prefix, got {url!r}")
        return S3Store(parsed.netloc, parsed.path.strip("/"), s3 or S3Options())
    raise ConfigError("FLEETLAKE_STORE_URL", f"unsupported store URL scheme {parsed.scheme!r}; use file:// or s3://")


class LocalStore:
    """A directory. Atomic writes by temp file + fsync + rename in the target directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create store directory {self.root}: {e.strerror}") from None

    def path(self, key: str) -> Path:
        return self.root / object_key(key)

    def put(self, key: str, data: bytes) -> None:
        self._atomic(key, lambda fh: fh.write(data))

    def put_file(self, key: str, path: Path) -> None:
        def copy(fh: BinaryIO) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)

        self._atomic(key, copy)

    def _atomic(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        target = self.path(key)
        tmp = target.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            dfd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if is_disk_full(e):
                raise DiskFull("FLEETLAKE_STORE_URL", "the file store", free_bytes(self.root)) from None
            raise StoreError(f"cannot write {key} to {self.url}: {e.strerror}") from None

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key} in {self.url}") from None
        except OSError as e:
            raise StoreError(f"cannot read {key} from {self.url}: {e.strerror}") from None

    def get_file(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self.path(key), path)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key} in {self.url}") from None
        except OSError as e:
            raise StoreError(f"cannot read {key} from {self.url}: {e.strerror}") from None

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.root
        out = []
        start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        if not start.exists():
            return []
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    continue  # in-flight or crashed writes are not objects
                full = Path(dirpath) / name
                key = full.relative_to(base).as_posix()
                if key.startswith(prefix):
                    try:
                        out.append(ObjectInfo(key, full.stat().st_size))
                    except FileNotFoundError:
                        continue
        return sorted(out, key=lambda o: o.key)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as e:
            raise StoreError(f"cannot delete {key} from {self.url}: {e.strerror}") from None

    def temp_leftovers(self) -> builtins.list[Path]:  # `list` here is the method above
        """Temp files of writes that crashed (garbage collection removes old ones)."""
        return [Path(d) / f for d, _, files in os.walk(self.root) for f in files if f.startswith(TMP_PREFIX)]


class S3Store:
    """An S3 bucket and prefix through boto3. A PUT is atomic in S3, so no temp keys are needed."""

    def __init__(self, bucket: str, prefix: str, options: S3Options) -> None:
        # boto3 costs ~0.5 s to import; a file:// store never needs it.
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.options = options  # partitions.delta builds delta-rs's storage options from these
        self.prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{bucket}/{prefix}".rstrip("/")
        # s3transfer repeats a whole download 5 times by default, each with botocore's own retries:
        # against a hung store that multiplies the wait; twice is enough for a body cut short.
        self._transfer = TransferConfig(num_download_attempts=2)
        self._client = boto3.client(
            "s3", endpoint_url=options.endpoint_url, region_name=options.region or "us-east-1",
            aws_access_key_id=options.access_key_id, aws_secret_access_key=options.secret_access_key,
            # total_max_attempts counts the first attempt (botocore's max_attempts does not).
            config=Config(connect_timeout=options.connect_timeout_s, read_timeout=options.read_timeout_s,
                          retries={"total_max_attempts": options.max_attempts, "mode": "standard"},
                          s3={"addressing_style": "path"} if options.endpoint_url else None))

    def _key(self, key: str) -> str:
        return self.prefix + object_key(key)

    def _fail(self, op: str, key: str, e: Exception) -> StoreError:
        from botocore.exceptions import ClientError  # as above: only S3 stores load botocore

        if isinstance(e, ClientError):
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return ObjectNotFound(f"no object {key} in {self.url}")
            return StoreError(f"S3 {op} of {key} in {self.url} failed: {code or 'error'}")
        return StoreError(f"S3 {op} of {key} in {self.url} failed: {type(e).__name__}")

    def put(self, key: str, data: bytes) -> None:
        k = self._key(key)
        try:
            self._client.put_object(Bucket=self.bucket, Key=k, Body=data)
        except Exception as e:  # noqa: BLE001 - every botocore failure becomes a StoreError
            raise self._fail("put", key, e) from None

    def put_file(self, key: str, path: Path) -> None:
        k = self._key(key)
        try:
            self._client.upload_file(str(path), self.bucket, k, Config=self._transfer)
        except Exception as e:  # noqa: BLE001
            raise self._fail("upload", key, getattr(e, "last_exception", None) or e) from None

    def get(self, key: str) -> bytes:
        k = self._key(key)
        try:
            return self._client.get_object(Bucket=self.bucket, Key=k)["Body"].read()
        except Exception as e:  # noqa: BLE001
            raise self._fail("get", key, e) from None

    def get_file(self, key: str, path: Path) -> None:
        k = self._key(key)
        tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}")
        try:
            self._client.download_file(self.bucket, k, str(tmp), Config=self._transfer)
            os.replace(tmp, path)
        except Exception as e:  # noqa: BLE001
            tmp.unlink(missing_ok=True)
            raise self._fail("download", key, e) from None

    def list(self, prefix: str) -> list[ObjectInfo]:
        out = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                         Prefix=self.prefix + prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    out.append(ObjectInfo(obj["Key"][len(self.prefix):], int(obj["Size"])))
        except Exception as e:  # noqa: BLE001
            raise self._fail("list", prefix, e) from None
        return sorted(out, key=lambda o: o.key)

    def exists(self, key: str) -> bool:
        k = self._key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=k)
            return True
        except Exception as e:  # noqa: BLE001
            err = self._fail("head", key, e)
            if isinstance(err, ObjectNotFound):
                return False
            raise err from None

    def delete(self, key: str) -> None:
        k = self._key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=k)
        except Exception as e:  # noqa: BLE001
            raise self._fail("delete", key, e) from None
