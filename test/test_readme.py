"""The README keeps the sections users and the issues rely on, its links resolve, and what it
states about the ROS API matches the code (a README edit once dropped half of the document)."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
HEADINGS = re.findall(r"^#{2,4} (.+)$", README, flags=re.M)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_the_sections_a_ros_package_readme_needs_are_there():
    wanted = ["Overview", "Quick start", "ROS API", "Messages", "Parameters", "Launch", "Tools", "Examples",
              "Behaviour on bad input", "Reliability", "Benchmarks", "The model", "Backends"]
    missing = [w for w in wanted if w not in HEADINGS]
    assert not missing, f"README lacks the sections {missing}"


def test_every_table_of_contents_link_finds_its_heading():
    anchors = {anchor(h) for h in HEADINGS}
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert links
    assert not [link for link in links if link not in anchors]


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands[:2] == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_the_audio_qos_the_readme_states_is_the_nodes():
    source = (REPO / "talking_face_ros" / "nodes" / "talking_face_node.py").read_text()
    depth = int(re.search(r"^AUDIO_QOS = QoSProfile\(history=HistoryPolicy.KEEP_LAST, depth=(\d+)", source,
                          flags=re.M).group(1))
    row = next(line for line in README.splitlines() if line.startswith("| `audio` (sub)"))
    assert f"keep last {depth}," in row


def test_every_script_the_readme_names_exists():
    named = set(re.findall(r"\b((?:bench|scripts)/[\w/]+\.(?:py|sh))\b", README))
    assert named
    assert not [path for path in sorted(named) if not (REPO / path).is_file()]
