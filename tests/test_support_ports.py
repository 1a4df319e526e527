"""The test servers' ports stay out of the kernel's ephemeral range, and a weed that loses a port
to someone else is started again instead of failing the whole session's S3 tests."""

from __future__ import annotations

import socket

import pytest

from tests.support import ports, seaweed


def test_ports_come_from_the_band_the_kernel_never_hands_out() -> None:
    band = ports.quiet_band()
    assert band, "this machine's ephemeral range leaves no quiet band; the fallback is the kernel's choice"
    chosen = ports.free_ports(40, avoid=ports.RAY_WORKER_PORTS)
    assert len(set(chosen)) == 40
    assert all(p in band for p in chosen)
    assert not any(p in ports.RAY_WORKER_PORTS for p in chosen)


def test_each_xdist_worker_draws_from_a_share_of_the_band_no_other_worker_draws_from(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "6")
    shares = []
    for i in range(6):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{i}")
        shares.append(ports.quiet_band())
        assert all(p in shares[-1] for p in ports.free_ports(20))
    for i, a in enumerate(shares):
        assert len(a) >= 1000
        for b in shares[i + 1:]:
            assert not set(a) & set(b)
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert all(set(share) <= set(ports.quiet_band()) for share in shares)  # outside xdist: the whole band


def test_a_weed_whose_port_was_taken_is_started_again_on_fresh_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = socket.socket()  # bound, not listening: weed cannot bind it, and nothing answers on it
    squatter.bind(("127.0.0.1", 0))
    taken = squatter.getsockname()[1]
    real = ports.free_ports
    calls: list[list[int]] = []

    def first_one_taken(n: int, avoid: range = range(0)) -> list[int]:
        got = real(n, avoid)
        if not calls:
            got[6] = taken  # the S3 port: weed cannot bind it and exits
        calls.append(got)
        return got

    monkeypatch.setattr(seaweed, "free_ports", first_one_taken)
    try:
        server = seaweed.start_seaweed()
        try:
            assert len(calls) == 2
            assert server.endpoint.endswith(f":{calls[1][6]}")
            assert seaweed.s3_client(server.endpoint).get_object(Bucket=seaweed.BUCKET, Key="_ready")["Body"].read() == b"ok"
        finally:
            server.stop()
    finally:
        squatter.close()


def test_a_weed_that_keeps_failing_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = socket.socket()  # bound, not listening: weed cannot bind it, and nothing answers on it
    squatter.bind(("127.0.0.1", 0))
    taken = squatter.getsockname()[1]
    real = ports.free_ports

    def always_taken(n: int, avoid: range = range(0)) -> list[int]:
        got = real(n, avoid)
        got[6] = taken
        return got

    monkeypatch.setattr(seaweed, "free_ports", always_taken)
    try:
        with pytest.raises(RuntimeError, match="weed exited with .*the end of its log") as err:
            seaweed.start_seaweed(attempts=2)
        assert str(taken) in str(err.value)  # the log names the port it could not bind
    finally:
        squatter.close()
