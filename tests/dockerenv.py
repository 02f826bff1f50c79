"""Whether a Docker engine answers, and the locally built PostgreSQL test image.

Without an engine the docker tests are skipped, except under CI (CI=true) or with
ERPPROV_REQUIRE_DOCKER=1, where a missing engine fails the run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IMAGE = os.environ.get("ERPPROV_TEST_IMAGE", "erpprov-test/postgres:15")
REQUIRED = os.environ.get("ERPPROV_REQUIRE_DOCKER") == "1" or os.environ.get("CI") == "true"
BUILD_SCRIPT = Path(__file__).parent / "docker" / "build-image.sh"


def _engine_problem() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure to reach it: the reason goes into the skip/fail message
        return f"{type(exc).__name__}: {exc}"
    return None


ENGINE_PROBLEM = _engine_problem()
if ENGINE_PROBLEM and REQUIRED:
    pytest.fail(f"a Docker engine is required here (CI=true or ERPPROV_REQUIRE_DOCKER=1) but none answers: "
                f"{ENGINE_PROBLEM}", pytrace=False)
needs_engine = [pytest.mark.docker,
                pytest.mark.skipif(ENGINE_PROBLEM is not None, reason=f"no Docker engine: {ENGINE_PROBLEM}")]


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image(engine: Any) -> str:
    """The test image, built once from Debian packages if it is missing (no registry is reachable)."""
    import docker

    try:
        engine.images.get(IMAGE)
        return IMAGE
    except docker.errors.ImageNotFound:
        pass
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                            env={**os.environ, "ERPPROV_TEST_IMAGE": IMAGE})
    if result.returncode != 0:
        message = f"test image {IMAGE} is missing and {BUILD_SCRIPT} failed:\n{result.stderr[-2000:]}"
        if REQUIRED:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return IMAGE
