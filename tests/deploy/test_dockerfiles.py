"""Dockerfile.api and Dockerfile.worker, parsed with BuildKit's own parser and linted with hadolint."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from tests.deploy import files

DOCKERFILES = ("Dockerfile.api", "Dockerfile.worker")
BASE_IMAGE = "python:3.12-slim"
BUILD_TOOLS = ("gcc", "build-essential", "g++", "make", "libpq-dev")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_finds_nothing(name: str) -> None:
    result = subprocess.run(
        [str(files.BIN / "hadolint"), "--no-color", name], cwd=files.ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_multi_stage_on_python_312_slim(name: str) -> None:
    stages = files.dockerfile_stages(name)
    assert [s.base for s in stages] == [BASE_IMAGE, BASE_IMAGE]
    build, runtime = stages
    assert build.name == "build" and runtime.name == "runtime"
    # The final stage takes only the virtualenv from the build stage and installs nothing itself.
    copies_from_build = [c for c in runtime.of("COPY") if "--from=build" in c.flags]
    assert [c.value for c in copies_from_build] == [("/opt/venv", "/opt/venv")]
    runtime_runs = " ".join(" ".join(r.value) for r in runtime.of("RUN"))
    assert "pip install" not in runtime_runs and "apt-get install" not in runtime_runs
    assert not any(tool in runtime_runs for tool in BUILD_TOOLS)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_pinned_requirements_installed_from_wheels_without_cache(name: str) -> None:
    build = files.dockerfile_stages(name)[0]
    install = " ".join(" ".join(r.value) for r in build.of("RUN"))
    assert "-r requirements.txt" in install
    assert "--no-cache-dir" in install and "--only-binary=:all:" in install
    requirements = [
        line.strip()
        for line in (files.ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert requirements and all("==" in line for line in requirements), "every requirement pinned with =="


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runs_as_a_non_root_user(name: str) -> None:
    runtime = files.dockerfile_stages(name)[-1]
    user = runtime.of("USER")[-1].value[0]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, "a numeric non-root uid (Kubernetes runAsNonRoot can verify it)"
    # The user switch comes after every COPY, so the code stays root-owned and read-only to the service.
    order = [i.cmd for i in runtime.instructions]
    assert max(i for i, cmd in enumerate(order) if cmd in {"COPY", "RUN"}) < order.index("USER")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_exec_form_entry_points_healthcheck_and_sigterm(name: str) -> None:
    runtime = files.dockerfile_stages(name)[-1]
    for cmd in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
        instruction = runtime.of(cmd)[-1]
        assert instruction.json, f"{cmd} must use the exec (JSON) form so the process is PID 1 and gets SIGTERM"
    assert runtime.of("STOPSIGNAL")[-1].value == ("SIGTERM",)
    healthcheck = runtime.of("HEALTHCHECK")[-1]
    assert healthcheck.value[0] == "CMD"
    assert any(flag.startswith("--timeout=") for flag in healthcheck.flags)


HAS_WORKER = (files.ROOT / "worker" / "celery_app.py").exists()
needs_worker = pytest.mark.skipif(
    not HAS_WORKER, reason="worker/celery_app.py (the payout pipeline) not on this branch"
)


@pytest.mark.parametrize("name", ["Dockerfile.api", pytest.param("Dockerfile.worker", marks=needs_worker)])
def test_every_copied_path_exists(name: str) -> None:
    for stage in files.dockerfile_stages(name):
        for copy in stage.of("COPY"):
            if any(flag.startswith("--from=") for flag in copy.flags):
                continue
            for source in copy.value[:-1]:
                assert (files.ROOT / source).exists(), f"{name} copies {source}, which does not exist"


def _module_exists(dotted: str) -> bool:
    return importlib.util.find_spec(dotted) is not None


def test_api_image_command_names_real_code() -> None:
    command = files.image_command("Dockerfile.api")
    assert command == ["gunicorn", "--config", "gunicorn.conf.py", "api.wsgi:app"]
    assert (files.BIN / "gunicorn").exists()
    assert (files.ROOT / "gunicorn.conf.py").exists()
    module, _, attribute = command[-1].partition(":")
    assert _module_exists(module)
    copied = {c.value[0] for c in files.dockerfile_stages("Dockerfile.api")[-1].of("COPY")}
    assert {"api/", "shared/", "migrations/"} <= copied and any("gunicorn.conf.py" in c for c in _copied_files())
    assert attribute == "app"


def _copied_files() -> list[str]:
    return [" ".join(c.value) for c in files.dockerfile_stages("Dockerfile.api")[-1].of("COPY")]


@needs_worker
def test_worker_image_command_names_real_code() -> None:
    command = files.image_command("Dockerfile.worker")
    assert command[:3] == ["celery", "-A", "worker.celery_app"]
    assert command[3] == "worker"
    assert (files.BIN / "celery").exists()
    assert Path(files.ROOT / "worker" / "celery_app.py").exists(), "the payout pipeline's Celery app"
    copied = {c.value[0] for c in files.dockerfile_stages("Dockerfile.worker")[-1].of("COPY")}
    assert {"shared/", "worker/"} <= copied


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    ignored = (files.ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "tests/", "var/"):
        assert entry in ignored
