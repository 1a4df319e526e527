"""The object store interface, run against the local backend and a real SeaweedFS S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError, InvalidName, ObjectNotFound, StoreError
from partitions.store import LocalStore, ObjectStore, S3Options, open_store


def test_put_get_overwrite_list_delete(store: ObjectStore) -> None:
    store.put("raw/a/1.bin", b"one")
    store.put("raw/a/2.bin", b"two")
    store.put("raw/b/1.bin", b"three")
    store.put("raw/a/1.bin", b"uno")
    assert store.get("raw/a/1.bin") == b"uno"
    assert [o.key for o in store.list("raw/a/")] == ["raw/a/1.bin", "raw/a/2.bin"]
    assert [o.size for o in store.list("raw/a/")] == [3, 3]
    assert [o.key for o in store.list("raw/")] == ["raw/a/1.bin", "raw/a/2.bin", "raw/b/1.bin"]
    assert store.list("nothing/") == []
    assert store.exists("raw/b/1.bin") and not store.exists("raw/b/2.bin")
    store.delete("raw/a/2.bin")
    assert [o.key for o in store.list("raw/a/")] == ["raw/a/1.bin"]
    store.delete("raw/a/2.bin")  # deleting what is gone is fine


def test_missing_objects_raise_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound, match="raw/none"):
        store.get("raw/none")
    with pytest.raises(ObjectNotFound):
        store.get_file("raw/none", Path("/tmp/never-written"))


def test_files_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(bytes(range(256)) * 40_000)  # 10 MB: multipart on S3
    store.put_file("raw/big.bin", src)
    dst = tmp_path / "dst.bin"
    store.get_file("raw/big.bin", dst)
    assert dst.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a//b", "a/./b", "a/../b", "", "a\\b", "a/\x00b"])
def test_keys_cannot_escape_the_store(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidName):
        store.put(key, b"x")


def test_local_writes_are_atomic_and_temp_files_are_not_objects(tmp_path: Path) -> None:
    s = LocalStore(tmp_path)
    s.put("raw/x.bin", b"1")
    (tmp_path / "raw" / ".tmp-crashed").write_bytes(b"half")
    assert [o.key for o in s.list("raw/")] == ["raw/x.bin"]
    assert len(s.temp_leftovers()) == 1


@pytest.mark.parametrize("url", ["file://relative/path", "ftp://x/y", "s3://", "file://host/abs"])
def test_bad_store_urls_name_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="FLEETLAKE_STORE_URL"):
        open_store(url)


def test_a_dead_s3_endpoint_is_a_clear_store_error_without_secrets() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    secret = "very-secret-value-123"
    store = open_store("s3://bucket/p", S3Options(endpoint_url=f"http://127.0.0.1:{port}", access_key_id="k",
                                                   secret_access_key=secret, connect_timeout_s=0.5,
                                                   max_attempts=1))
    with pytest.raises(StoreError) as info:
        store.put("raw/x", b"1")
    assert "put of raw/x" in str(info.value) and secret not in str(info.value)
    assert secret not in repr(S3Options(secret_access_key=secret))
