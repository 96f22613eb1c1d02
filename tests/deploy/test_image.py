"""The container image: its Dockerfile builds what the chart runs, from the package's layout."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.helm import render

ROOT = Path(__file__).resolve().parents[2]


def test_the_build_copies_every_directory_the_package_links_to() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE))
    links = {
        str(p.resolve().relative_to(ROOT))
        for p in (ROOT / "tenantplane").iterdir()
        if p.is_symlink()
    }
    assert links == {"contracts", "services"}
    assert {"tenantplane", *links} <= copied


def test_the_chart_runs_the_image_the_dockerfile_builds_as_a_user_without_privileges() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    deployment = next(o for o in render() if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    image = container["image"]
    assert f"docker build -t {image} ." in dockerfile
    assert container["command"] == ["tenantctl"]
    assert 'ENTRYPOINT ["tenantctl"]' in dockerfile
    assert re.search(r"^USER 10001$", dockerfile, flags=re.MULTILINE)
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
