"""The documentation: a README read in ten minutes, topic pages that build as a static site (mkdocs, strict: a broken
link or anchor fails), a configuration reference generated from the schema (tests/unit/test_schema_docs.py keeps it
current), and no bare `pulumi` command a reader could paste into a new shell."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
PAGES = sorted((PROJECT / "docs").glob("*.md"))
USER_PAGES = [page for page in PAGES if page.name not in ("testing.md", "testbed.md")]


def test_the_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=PROJECT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    built = {path.parent.name or "index" for path in (tmp_path / "site").glob("**/index.html")}
    assert {page.stem for page in PAGES} <= built | {"index"}


def test_every_page_is_in_the_nav():
    nav = (PROJECT / "mkdocs.yml").read_text()
    assert [page.name for page in PAGES if page.name not in nav] == []


def test_the_readme_is_short_and_names_the_four_capabilities_first():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300
    first_screen = "\n".join(lines[:20])
    for capability in ("Experiment servers", "Clusters", "Jobs", "Python functions"):
        assert f"**{capability}**" in first_screen
    for section in ("## Install", "## A first experiment", "## A first cluster", "## A first job", "## Documentation"):
        assert section in lines


def test_the_readmes_links_resolve():
    targets = re.findall(r"\]\(((?!https?:)[^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    assert targets and [target for target in targets if not (PROJECT / target).exists()] == []


def test_the_readme_names_every_placeholder_of_the_example():
    text = README.read_text()
    section = text[text.index("**Make the example yours.**"):text.index("Then:")]
    for placeholder in ("198.51.100.0/24", "192.0.2.0/24", "203.0.113.0/24", "2001:db8::/32", "sshCidrs",
                        "ingressCidrs", "ingressIpv6Cidrs", "elif.my-experiments.org", "ghcr.io/your-lab/elif",
                        "serverPem", "labstack_ed25519"):
        assert placeholder in section, placeholder


BARE_COMMAND = re.compile(r"^(\$ )?pulumi \S")
BARE_SPAN = re.compile(r"`pulumi ([^`]*(?: -s | --stack )[^`]*|config set (--path |--secret )*'?[a-z]+:\S+ \S[^`]*)`")


def test_no_page_prints_a_bare_pulumi_command():
    """Commands to paste run through invoke, which knows the project's state backend and passphrase file; a bare
    `pulumi up` naming Pulumi's operation in prose is fine."""
    found = []
    for path in [README, *PAGES]:
        fenced = False
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif (fenced and BARE_COMMAND.match(line.strip())) or (not fenced and BARE_SPAN.search(line)):
                found.append(f"{path.relative_to(PROJECT)}:{number}: {line.strip()}")
    assert found == []


def test_bench_figures_and_test_bed_evidence_are_on_the_contributor_pages():
    blocks = re.compile(r"^(- )?\*\*(Tested|Figures|Benchmark|Bring-up time|Evaluation under mocks)|^(- )?Tested", re.M)
    assert {page.name: blocks.findall(page.read_text()) for page in USER_PAGES} == {page.name: [] for page in USER_PAGES}
    assert "bench/" in (PROJECT / "docs" / "testing.md").read_text()
