"""README.md's model table lists every registered model with its current figures."""

import re
from pathlib import Path

import kerascnn
from kerascnn.cli.listing import si

README = Path(__file__).resolve().parent.parent / "README.md"


def model_rows():
    """The rows of the tables in README's "Models" section."""
    section = README.read_text().split("\n## Models\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(\w+)` \|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip("|").split("|")]
    return rows


def test_every_registered_model_is_in_the_readme_with_its_figures():
    rows = model_rows()
    assert sorted(rows) == kerascnn.list_models()
    for name, cells in rows.items():
        info = kerascnn.model_info(name)
        assert info["title"] in cells[1]
        assert cells[2] == f"{info['parameters']:,}"
        assert cells[3] == si(info["multiply_accumulates"])
        height, width, channels = info["input_shape"]
        min_h, min_w = info["min_size"]
        assert cells[4] == f"{height}x{width}x{channels} ({min_h}x{min_w})"
