"""README.md's Python blocks run as written, read from the file at test time.

Each block is checked by pyflakes (ruff's F rules: no undefined name, no top-level
``await``, no unused import) and then run in a fresh interpreter by readme_block.py,
with the WHOP_* variables set and Whop's address answered by a MockWhop. A block that
cannot run says so with ``<!-- fragment -->`` on the line above its fence.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from whop_oauth import generate_encryption_key

README = Path(__file__).parents[1] / "README.md"
RUNNER = Path(__file__).with_name("readme_block.py")
RUFF = Path(sys.executable).with_name("ruff")
FRAGMENT = "<!-- fragment -->"
FENCE = re.compile(r"^```python\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    source: str
    fragment: bool


def readme_blocks(text: str) -> list[Block]:
    """Every ```python block of ``text``, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            end = lines.index("```", index + 1)
            above = next((line for line in reversed(lines[:index]) if line.strip()), "")
            source = "\n".join(lines[index + 1 : end]) + "\n"
            blocks.append(Block(index + 1, source, above.strip() == FRAGMENT))
            index = end
        index += 1
    return blocks


BLOCKS = readme_blocks(README.read_text())


def test_every_python_fence_is_found() -> None:
    # An indented or oddly written fence would escape the tests below.
    assert len(BLOCKS) == README.read_text().count("```python")
    assert len(BLOCKS) >= 10
    assert sum(block.fragment for block in BLOCKS) <= 2  # fragments stay the exception


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_block_has_no_undefined_names_or_top_level_await(block: Block) -> None:
    result = subprocess.run(
        [str(RUFF), "check", "--isolated", "--no-cache", "--select", "F", "--output-format",
         "concise", "--stdin-filename", f"README_line_{block.line}.py", "-"],
        input=block.source,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"README.md block at line {block.line}:\n{result.stdout}"


@pytest.mark.parametrize(
    "block",
    [b for b in BLOCKS if not b.fragment],
    ids=[f"README.md:{b.line}" for b in BLOCKS if not b.fragment],
)
def test_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    script = tmp_path / f"README_line_{block.line}.py"
    script.write_text(block.source)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WHOP_")}
    env.update(
        WHOP_CLIENT_ID="app_XXXXXXXX",
        WHOP_SESSION_SECRETS=secrets.token_urlsafe(32),
        WHOP_ENCRYPTION_KEYS=generate_encryption_key(),
    )
    result = subprocess.run(
        [sys.executable, str(RUNNER), str(script)],
        cwd=tmp_path,  # relative store paths (sqlite:///tokens.db) land here
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"README.md block at line {block.line} failed\n{output}"
    assert "never awaited" not in result.stderr, output
