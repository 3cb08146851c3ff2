"""The machine-speed measurement the course runner prints (tiny run; no timing is asserted)."""

from segcourse.train.speed import machine_speed


def test_machine_speed_is_a_positive_rate():
    assert machine_speed(steps=1) > 0
