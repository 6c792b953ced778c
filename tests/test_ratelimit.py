from __future__ import annotations

import pytest

from wallboard.ratelimit import (
    ActionBudgets,
    Budget,
    Budgets,
    LoginBudgets,
    RateLimiter,
    Slots,
    TokenBucket,
    retry_after_header,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_sliding_window_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(60.0, clock=clock)
    assert [limiter.take("a", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 10
    assert limiter.take("a", 3) == pytest.approx(50.0)
    assert limiter.hit("b", 3)  # keys are apart
    clock.now += 50
    assert limiter.take("a", 3) == 0.0  # the first hit left the window
    assert limiter.retry_after("a", 3) == pytest.approx(0.0)
    assert limiter.retry_after("never-seen", 3) == 0.0


def test_budgets_pass_only_when_all_do_and_count_a_refusal_in_none() -> None:
    clock = Clock()
    budgets = Budgets({"short": Budget(2, 10.0), "long": Budget(3, 100.0)}, clock=clock)
    keys = {"short": "x", "long": "x"}
    assert [budgets.take(keys) for _ in range(2)] == [0.0, 0.0]
    assert budgets.take(keys) == pytest.approx(10.0)
    clock.now += 10
    assert budgets.take(keys) == 0.0
    assert budgets.take(keys) == pytest.approx(90.0)  # now the long one is spent
    clock.now += 90
    assert budgets.take(keys) == 0.0


def test_login_budgets_stop_spraying_from_one_address_and_guessing_one_name() -> None:
    clock = Clock()
    login = LoginBudgets(clock=clock)
    # one address, a new username each time: password spraying
    waits = [login.attempt("10.0.0.1", f"user{n}@sim") for n in range(31)]
    assert waits[:30] == [0.0] * 30 and waits[30] > 0
    assert login.attempt("10.0.0.2", "user0@sim") == 0.0  # another address is not held up
    # one username from many addresses
    waits = [login.attempt(f"10.1.0.{n}", "Boss@Sim") for n in range(21)]
    assert waits[:20] == [0.0] * 20 and 0 < waits[20] <= 300
    assert login.attempt("10.9.9.9", " boss@sim ") > 0  # the same name, however written
    # one address and one username: ten a minute
    waits = [login.attempt("10.2.0.1", "anna@sim") for _ in range(11)]
    assert waits[:10] == [0.0] * 10 and 0 < waits[10] <= 60
    assert waits[10] <= int(retry_after_header(waits[10])) < waits[10] + 1


def test_a_good_login_is_taken_back_from_every_budget() -> None:
    login = LoginBudgets(clock=Clock())
    for n in range(100):  # a shift of 100 people behind one address, each logging in once
        assert login.attempt("10.0.0.1", f"agent{n}@sim") == 0.0
        login.succeeded("10.0.0.1", f"agent{n}@sim")
    assert [login.attempt("10.0.0.1", f"guess{n}@sim") for n in range(31)][-1] > 0


def test_action_budgets_per_principal_and_per_address() -> None:
    clock = Clock()
    actions = ActionBudgets({"principal": Budget(3, 60.0), "address": Budget(4, 60.0)},
                            clock=clock)
    assert [actions.attempt("kiosk", "10.0.0.1") for _ in range(3)] == [0.0] * 3
    assert actions.attempt("kiosk", "10.0.0.2") > 0  # the principal's budget, any address
    assert actions.attempt("viewer:eve", "10.0.0.1") == 0.0
    assert actions.attempt("viewer:bob", "10.0.0.1") > 0  # the address's budget, anyone


def test_retry_after_header_is_whole_seconds_rounded_up() -> None:
    assert [retry_after_header(s) for s in (0.001, 1.0, 1.2, 59.9)] == ["1", "1", "2", "60"]


def test_the_key_table_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(60.0, clock=clock, max_keys=2000)
    for n in range(10_000):
        limiter.hit(f"10.0.{n // 256}.{n % 256}", 5)
    assert len(limiter._hits) <= 2000
    clock.now += 61
    limiter.hit("late", 5)
    assert len(limiter._hits) == 1


def test_slots_count_what_is_open() -> None:
    slots = Slots()
    assert [slots.acquire("s", 2) for _ in range(3)] == [True, True, False]
    slots.release("s")
    assert slots.acquire("s", 2) and slots.count("s") == 2
    slots.release("s")
    slots.release("s")
    assert slots.count("s") == 0 and slots._open == {}


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, 5, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 1.0
    assert [bucket.take() for _ in range(3)] == [True, True, False]
