"""The machine-speed measurement the course runner prints (tiny run; no timing is asserted)."""

import pytest

from coursetools.speed import machine_speed


def test_machine_speed_is_a_positive_rate():
    assert machine_speed(steps=1) > 0


def test_machine_speed_takes_the_best_round(monkeypatch):
    from coursetools import speed

    rates = iter([5.0, 40.0, 12.0])  # a busy moment slowed the first and last round
    monkeypatch.setattr(speed, "train_rate", lambda *a, **k: next(rates))
    assert speed.machine_speed(steps=1, rounds=3) == 40.0


def test_machine_speed_rejects_zero_rounds():
    with pytest.raises(ValueError, match="rounds must be >= 1, got 0"):
        machine_speed(steps=1, rounds=0)


def test_load_average_is_per_cpu():
    import os

    from coursetools.speed import load_average

    load = load_average()
    assert load is not None and load == round(os.getloadavg()[0] / os.cpu_count(), 2)
