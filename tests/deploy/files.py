"""Readers for the deployment files: compose (through the real Compose parser), Dockerfiles, manifests, env."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import dockerfile
import yaml

from shared.config import Config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
K8S_DIR = ROOT / "deploy" / "k8s"
APP_SERVICES = ("migrate", "api", "worker", "beat", "flower")
# Read only by the test suite, never by the service.
TEST_ONLY_VARIABLES = frozenset({"TEST_DATABASE_URL", "TEST_REDIS_URL"})
SOURCE_DIRS = ("api", "shared", "worker")


def compose_config(env_file: Path | None = None) -> dict[str, Any]:
    """``docker compose config`` resolved by Compose v2 itself, from a clean environment (no stray .env)."""
    return json.loads(json.dumps(_compose_config(env_file)))  # a private copy per caller


@cache
def _compose_config(env_file: Path | None) -> dict[str, Any]:
    args = [str(BIN / "docker-compose"), "-f", str(ROOT / "compose.yaml")]
    args += ["--env-file", str(env_file) if env_file else os.devnull, "config", "--format", "json"]
    result = subprocess.run(
        args, capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, cwd=ROOT, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def parse_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines as bash would read them (``set -a; . file``), comments and blanks skipped."""
    script = f'set -a; . "{path}"; set +a; env -0'
    clean = subprocess.run(["env", "-i", "bash", "-c", "env -0"], capture_output=True, check=True).stdout
    out = subprocess.run(["env", "-i", "bash", "-c", script], capture_output=True, check=True).stdout
    baseline = dict(item.split("=", 1) for item in clean.decode().split("\0") if "=" in item)
    values = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", path.read_text(), flags=re.MULTILINE))
    return {name: values.get(name, "") for name in names if name not in baseline or name in values}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Any] = field(default_factory=list)

    def of(self, cmd: str) -> list[Any]:
        return [i for i in self.instructions if i.cmd == cmd]


def dockerfile_stages(name: str) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in dockerfile.parse_file(str(ROOT / name)):
        if instruction.cmd == "FROM":
            value = instruction.value
            stages.append(Stage(value[0], value[2] if len(value) == 3 else None))
        else:
            stages[-1].instructions.append(instruction)
    return stages


def image_command(name: str) -> list[str]:
    """ENTRYPOINT + CMD of the final stage, as the container would run them."""
    final = dockerfile_stages(name)[-1]
    entrypoint = list(final.of("ENTRYPOINT")[-1].value) if final.of("ENTRYPOINT") else []
    cmd = list(final.of("CMD")[-1].value) if final.of("CMD") else []
    return entrypoint + cmd


def image_env(name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in dockerfile_stages(name)[-1].of("ENV"):
        values = instruction.value
        env.update(zip(values[::2], values[1::2], strict=True))
    return env


@cache
def manifests() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


_ENV_READ = re.compile(r"""(?:os\.environ\.get|os\.getenv|os\.environ\[|environ\.get)\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
_ENV_CONSTANT = re.compile(r"""^\s*ENV_VAR\s*=\s*["']([A-Z][A-Z0-9_]+)["']""", re.MULTILINE)


def variables_read_by_code() -> set[str]:
    """Config's variables plus every name read straight from os.environ in the service's code."""
    names = set(Config.documented_variables())
    files = [ROOT / "gunicorn.conf.py"] + [
        p for d in SOURCE_DIRS if (ROOT / d).exists() for p in (ROOT / d).rglob("*.py")
    ]
    for path in files:
        text = path.read_text()
        names.update(_ENV_READ.findall(text))
        names.update(_ENV_CONSTANT.findall(text))
    return names - TEST_ONLY_VARIABLES
