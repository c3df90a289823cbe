"""README.md's "A short tour" runs as written and prints what the README says it prints
(its ``# ->`` comments and its text blocks), in a fresh directory and process. The
``show_config()`` block describes the machine the README was written on and is left out."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _tour():
    """``(script, expected_lines)`` from the tour's python and text blocks."""
    text = open(README, encoding="utf-8").read()
    section = text[text.index("## A short tour") : text.index("## The path kernel")]
    blocks = re.findall(r"^( *)```(\w*)\n(.*?)^\1```", section, flags=re.S | re.M)
    code, expected, machine_block = [], [], False
    for _indent, lang, body in blocks:
        body = textwrap.dedent(body)
        if lang == "python":
            machine_block = "show_config()" in body
            if machine_block:
                continue
            code.append(body)
            lines = body.splitlines()
            i = 0
            while i < len(lines):
                match = re.search(r"# -> (.*)$", lines[i])
                i += 1
                if match:
                    expected.append(match.group(1))
                    while i < len(lines) and lines[i].startswith("#    "):
                        expected.append(lines[i][len("#    ") :])
                        i += 1
        elif lang == "text" and not machine_block:
            expected.extend(body.rstrip("\n").splitlines())
    return "\n".join(code), expected


def test_tour_prints_what_the_readme_says(tmp_path):
    script, expected = _tour()
    assert len(expected) > 10  # the parser found the tour's outputs
    (tmp_path / "tour.py").write_text(script)
    out = subprocess.run(
        [sys.executable, "tour.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = [line.rstrip() for line in out.stdout.rstrip("\n").splitlines()]
    assert got == [line.rstrip() for line in expected]
