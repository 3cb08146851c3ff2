"""Shared setup for the exercise meta-tests."""

from __future__ import annotations

import pytest

from segcourse.exercises.registry import load_all


@pytest.fixture(scope="session", autouse=True)
def _every_check_module_imported():
    """Import every lesson's check module strictly, once, so that a broken one fails its tests with its
    own error rather than as "no exercise '4.2'"."""
    load_all(strict=True)
