"""segcourse.pins: the one parser of name==version pins."""

from __future__ import annotations

from segcourse.pins import normalize, parse_pins


def test_requirement_lock_and_conda_lines():
    lines = ["# comment", "Scikit_Image==0.26.0", "torch==2.14.1  # the pair", "-r other.txt", "-c lock.txt",
             "numpy>=2.0", "  - python=3.11", "      - torchvision==0.29.1", "zope.interface == 7.2 ; python_version>'3'"]
    assert parse_pins(lines) == {"scikit-image": "0.26.0", "torch": "2.14.1", "torchvision": "0.29.1",
                                 "zope-interface": "7.2"}
    assert normalize("Zope.Interface__x") == "zope-interface-x"
