"""The README's command blocks, as tests run them: exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(heading: str, marker: str | None = None) -> list[str]:
    """The command lines of the first ``sh`` block after ``marker`` (or in section ``heading``)."""
    text = README.read_text()
    start = text.index(marker) if marker else text.index(f"## {heading}")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block, f"no sh block after {marker or heading}"
    return block.group(1).splitlines()
