"""Exercises: checks the learner runs, and the builder of the learner notebooks.

* :func:`check` -- ``check("1.1", my_function)`` prints passed / failed (which hidden case,
  why, a hint) / not attempted, and returns an :class:`~segcourse.exercises.registry.ExerciseResult` (a
  :class:`segcourse.checking.CheckResult`); it never raises.
* ``segcourse/exercises/lessonNN.py`` -- each lesson's checks, registered with
  :func:`segcourse.exercises.registry.exercise`.
* ``python -m segcourse exercises build [LESSON ...] [--check]`` -- generate ``notebooks/``
  from ``solutions/`` (see :mod:`segcourse.exercises.build`).

Lessons import :func:`check` (and the ``lessonNN`` helpers); :mod:`~segcourse.exercises.build` and
:mod:`~segcourse.exercises.cli` are repository tooling, imported by nothing a lesson runs: they work
on the checkout given by the working directory or by ``--solutions``/``--notebooks``.
"""

from .registry import ExerciseResult, all_exercises, check, exercise, get

__all__ = ["ExerciseResult", "all_exercises", "check", "exercise", "get"]
