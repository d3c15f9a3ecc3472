"""No Docker engine runs here: check the image's properties from the Dockerfile itself."""

from pathlib import Path

DOCKERFILE = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()
LINES = [line.strip() for line in DOCKERFILE.splitlines()]


def test_image_installs_from_the_lock_without_dev_dependencies() -> None:
    assert any(line.startswith("RUN uv sync --frozen --no-dev") for line in LINES)


def test_image_runs_as_a_non_root_user() -> None:
    users = [line.split()[1] for line in LINES if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def test_image_has_a_healthcheck_on_liveness() -> None:
    assert "HEALTHCHECK" in DOCKERFILE and "/api/v1/system/health/live" in DOCKERFILE


def test_image_commands_match_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    cmd = [line for line in LINES if line.startswith("CMD [")][-1]  # the image command
    assert '"projex", "serve"' in cmd and '"--no-worker"' in cmd
    for entrypoint in ("projex worker", "projex migrate"):
        assert entrypoint in DOCKERFILE and entrypoint in readme
