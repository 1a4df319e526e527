"""The console's login throttle as a pure rule, on an injected clock: slowed, locked, never for good."""

from __future__ import annotations

from ingest.surfaces.console.throttle import Admitted, Outcome, Refused, Rule, Throttle, address_key


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _admitted(v: Admitted | Refused) -> Admitted:
    assert isinstance(v, Admitted), v
    return v


def _fail(th: Throttle, address: str) -> Admitted:
    v = _admitted(th.attempt(address))
    th.finished(v, ok=False)
    return v


def _refusal(v: Admitted | Refused) -> Outcome | None:
    return v.outcome if isinstance(v, Refused) else None


def test_failures_are_slowed_then_locked_and_the_lock_grows_capped_and_expires() -> None:
    clock, rule = Clock(), Rule()
    th = Throttle(rule, clock)
    seen = [_fail(th, "198.51.100.7") for _ in range(rule.lock_after)]
    assert [v.delay_s for v in seen] == [0.0] * rule.free + [rule.delay_s] * (rule.lock_after - rule.free)
    assert [v.failures for v in seen] == list(range(1, rule.lock_after + 1))
    assert seen[-1].locked_s == rule.lock_s and all(v.locked_s == 0 for v in seen[:-1])
    # Locked: refused without a check, however often it is tried, and the lock does not grow.
    for _ in range(50):
        clock.t += 1
        v = th.attempt("198.51.100.7")
        assert _refusal(v) is Outcome.LOCKED
    assert isinstance(v, Refused) and v.retry_after_s == rule.lock_s - 50
    assert _refusal(th.attempt("198.51.100.8")) is None  # another address is not locked
    # Each failure after a lock expires locks again, twice as long, at most max_lock_s.
    locks: list[float] = []
    for _ in range(8):
        clock.t += locks[-1] if locks else rule.lock_s - 50
        locks.append(_fail(th, "198.51.100.7").locked_s)  # admitted: the lock had expired
    assert locks == [120.0, 240.0, 480.0, 900.0, 900.0, 900.0, 900.0, 900.0]
    assert max(locks) == rule.max_lock_s == 15 * 60


def test_a_success_forgets_the_address_even_one_admitted_as_it_locked() -> None:
    th = Throttle(Rule(), Clock())
    for _ in range(9):
        _fail(th, "198.51.100.7")
    v = _admitted(th.attempt("198.51.100.7"))  # the 10th: it locks, but its own password is still checked
    assert v.locked_s > 0
    th.finished(v, ok=True)
    again = _admitted(th.attempt("198.51.100.7"))
    assert again.failures == 1 and again.delay_s == 0.0


def test_parallel_attempts_count_before_they_finish() -> None:
    th = Throttle(Rule(), Clock())
    started = [th.attempt("198.51.100.7") for _ in range(12)]  # none finished yet
    assert [_refusal(v) for v in started] == [None] * 10 + [Outcome.LOCKED] * 2


def test_many_addresses_close_the_login_to_new_ones_but_not_to_a_known_one_and_it_reopens() -> None:
    clock, rule = Clock(), Rule(global_failures=30, global_window_s=60.0)
    th = Throttle(rule, clock)
    th.finished(_admitted(th.attempt("192.0.2.1")), ok=True)  # the operator logged in earlier
    for i in range(rule.global_failures):
        clock.t += 1
        _fail(th, f"203.0.113.{i}")
    v = th.attempt("203.0.113.200")
    assert isinstance(v, Refused) and v.outcome is Outcome.THROTTLED
    assert v.retry_after_s == 60.0 - 29  # when the oldest failure leaves the window
    th.finished(_admitted(th.attempt("192.0.2.1")), ok=True)  # the known address is still admitted
    clock.t += v.retry_after_s
    assert _refusal(th.attempt("203.0.113.200")) is None  # the rate fell: open again


def test_an_ipv6_host_counts_by_its_64_and_a_quiet_address_is_forgotten() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("::ffff:198.51.100.7") == "198.51.100.7"
    clock, rule = Clock(), Rule()
    th = Throttle(rule, clock)
    for i in range(rule.lock_after):
        _fail(th, f"2001:db8:1:2::{i + 1}")
    assert _refusal(th.attempt("2001:db8:1:2::abcd")) is Outcome.LOCKED
    clock.t += rule.forget_s
    assert _admitted(th.attempt("2001:db8:1:2::abcd")).failures == 1  # a day of silence: a fresh start
