"""Exercises: the checks a learner runs from a lesson.

* :func:`check` -- ``check("1.1", my_function)`` prints passed / failed (which hidden case,
  why, a hint) / not attempted, and returns an :class:`~segcourse.exercises.registry.ExerciseResult` (a
  :class:`segcourse.checking.CheckResult`); it never raises.
* ``segcourse/exercises/lessonNN.py`` -- each lesson's checks, registered with
  :func:`segcourse.exercises.registry.exercise`.

The learner notebooks are generated from the solutions by the course's tools
(``python -m coursetools exercises build``, :mod:`coursetools.learner`), which read the exercises
registered here.
"""

from .registry import ExerciseResult, all_exercises, check, exercise, get

__all__ = ["ExerciseResult", "all_exercises", "check", "exercise", "get"]
