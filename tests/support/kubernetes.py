"""Rendering the Kubernetes base with the real kustomize and reading what it renders.

`render` runs `kubectl kustomize` (no cluster: kustomize is offline). The helpers index the
objects, check them against Kubernetes' own schemas (the `kubernetes-validate` package
ships them per release) and against a minimal schema of the Prometheus Operator's CRDs
(schemas/monitoring.coreos.com-v1.json, its source in its $comment), and lay out a pod's
mounted ConfigMaps and Secrets in a directory so the real programs can check their config
as the pod would read it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = REPO / "deploy" / "kubernetes"
BASE = KUSTOMIZE_DIR / "base"
EXAMPLE = KUSTOMIZE_DIR / "example"
SECRETS_SCRIPT = KUSTOMIZE_DIR / "secrets.sh"
KUBECTL = "/usr/bin/kubectl"
CRD_SCHEMA = Path(__file__).resolve().parent / "schemas" / "monitoring.coreos.com-v1.json"
# Releases whose schemas the built-in objects must pass: that of the kubectl here (client
# 1.32, whose kustomize renders the base) and the newest the package ships.
KUBERNETES_VERSIONS = ("1.32", kubernetes_validate.latest_version())

Obj = dict[str, Any]


@cache
def render(directory: Path) -> tuple[Obj, ...]:
    """Every object `kubectl kustomize DIRECTORY` prints (cached: the files do not change
    during a run)."""
    result = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True,
                            text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc is not None)


def of_kind(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: tuple[Obj, ...], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A matchLabels selector (the only kind the base uses) against a label set."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def builtin_schema_errors(obj: Obj, version: str) -> str | None:
    """None, or why `obj` fails Kubernetes `version`'s strict schema (unknown fields too)."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata']['name']} ({version}): {exc.message} at {exc.path}"
    return None


@cache
def _crd_schema() -> Obj:
    schema: Obj = json.loads(CRD_SCHEMA.read_text())
    return schema


def crd_kinds() -> set[str]:
    return {k for k in _crd_schema()["$defs"] if k[0].isupper()}


def crd_schema_errors(obj: Obj) -> list[str]:
    schema = {**_crd_schema(), "$ref": f"#/$defs/{obj['kind']}"}
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{obj['kind']}/{obj['metadata']['name']}: {e.message} at "
            f"{'/'.join(map(str, e.absolute_path))}" for e in validator.iter_errors(obj)]


def secrets_from_script(secrets_dir: Path, namespace: str) -> list[Obj]:
    """The Secrets deploy/kubernetes/secrets.sh prints for `secrets_dir`."""
    result = subprocess.run(["sh", str(SECRETS_SCRIPT), str(secrets_dir), namespace],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


def secret_value(secret: Obj, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def lay_out_pod(objects: tuple[Obj, ...], deployment: Obj, secrets: list[Obj],
                root: Path) -> dict[str, str]:
    """Write what each container of `deployment` mounts under `root` (ConfigMaps from the
    render, Secrets from `secrets`); returns {mount path: its place under root}. Files
    that name a mount path are rewritten to the place under root, as the pod reads them."""
    spec = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    places: dict[str, str] = {}
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            place = root / mount["mountPath"].lstrip("/")
            place.mkdir(parents=True, exist_ok=True)
            places[mount["mountPath"].rstrip("/")] = str(place)
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                config_map = named(objects, "ConfigMap", volume["configMap"]["name"])
                for key, text in config_map["data"].items():
                    (place / key).write_text(text)
            elif "secret" in volume:
                name = volume["secret"]["secretName"]
                (secret,) = [s for s in secrets if s["metadata"]["name"] == name]
                for item in volume["secret"]["items"]:
                    (place / item["path"]).write_text(secret_value(secret, item["key"]))
    for path in root.rglob("*"):
        if path.is_file():
            path.write_text(rewrite(path.read_text(), places))
    return places


def rewrite(text: str, places: dict[str, str]) -> str:
    """`text` with each mount path (`/etc/saasmon/...`) replaced by its place on disk, in
    one pass (a place under /tmp is not a mount path again), the longest mount first."""
    mounts = sorted((m.rstrip("/") for m in places), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(m) + "(?=/)" for m in mounts))
    return pattern.sub(lambda found: places[found.group(0)].rstrip("/"), text)


def which(binary: str) -> str:
    path = shutil.which(binary)
    assert path is not None, f"{binary} is not installed (Makefile DEB_PACKAGES)"
    return path
