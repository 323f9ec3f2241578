"""deploy/Dockerfile: one image that runs every entry point the manifests name, with precompiled bytecode.

The image is worked out from the Dockerfile and its dockerignore (tests/deploy/image.py), not built: there is
no container engine on these machines.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.image import (
    ROOT,
    EntryPoint,
    Image,
    build_image,
    commands_of,
    first_party_roots,
    parse_dockerfile,
    resolve,
    walk_imports,
)
from tests.deploy.manifests import COMPOSE, K8S, containers, load_all


@pytest.fixture(scope="module")
def image() -> Image:
    return build_image()


def entry_points(image: Image) -> list[EntryPoint]:
    """Every command the deployment files run in the product's image, with where it is named."""
    found = [EntryPoint("deploy/Dockerfile CMD", image.cmd)]
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in load_all(path):
            for container in containers(doc):
                argv = [*container.get("command", []), *container.get("args", [])] or image.cmd
                found.append(EntryPoint(f"{path.relative_to(ROOT)} {container['name']}", argv))
    compose = load_all(COMPOSE)[0]
    ours = {name for name, s in compose["services"].items() if _is_product_image(s)}
    for name in sorted(ours):
        command = compose["services"][name].get("command", image.cmd)
        argv = shlex.split(command) if isinstance(command, str) else command
        found.append(EntryPoint(f"deploy/compose.yaml {name}", argv))
    return found


def runnable_modules(image: Image) -> set[str]:
    found = set()
    prefix = image.workdir + "/"
    for path, source in image.files.items():
        if not path.endswith(".py") or not path.startswith(prefix):
            continue
        if path.endswith("/__main__.py") or 'if __name__ == "__main__":' in source.read_text(
            encoding="utf-8"
        ):
            found.add(path.removeprefix(prefix).removesuffix(".py").replace("/", "."))
    return found


def _is_product_image(service: dict[str, Any]) -> bool:
    build = service.get("build") or {}
    return build.get("dockerfile") == "deploy/Dockerfile" or str(service.get("image", "")).startswith(
        "overdue"
    )


def test_every_entry_point_named_in_a_manifest_runs_from_the_image(image: Image) -> None:
    points = entry_points(image)
    named = {" ".join(c) for p in points for c in commands_of(p.argv)}
    # The product's processes, each named by at least one manifest: worker, admin UI (and its codec
    # endpoint), migrations, search-attribute registration.
    for required in ("python worker.py", "python -m admin", "python -m stack.migrate"):
        assert required in named, f"no manifest runs {required!r}"
    assert any("register_search_attributes.sh" in c for c in named)
    problems = []
    for point in points:
        for command in commands_of(point.argv):
            _, problem = resolve(image, command)
            if problem:
                problems.append(f"{point.where}: {problem}")
    assert not problems, "\n".join(problems)


def test_every_first_party_module_an_entry_point_imports_is_in_the_image(image: Image) -> None:
    start: set[str] = set()
    for point in entry_points(image):
        for command in commands_of(point.argv):
            modules, _ = resolve(image, command)
            start.update(modules)
    # Every module of the image an operator can run (`python -m starter`, `admin.users`, `stack.purge`,
    # `privacy.erase`...), beyond what the manifests start.
    start |= runnable_modules(image)
    assert {"starter.__main__", "admin.users", "stack.purge", "stack.migrate"} <= start
    walk = walk_imports(image, sorted(start))
    assert not walk.missing, f"imported by an entry point, not in the image: {sorted(walk.missing)}"
    # Sanity: the walk did reach the packages that make up the product.
    roots = {m.split(".")[0] for m in walk.modules}
    assert {"worker", "admin", "stack", "starter", "workflows", "activities", "domain"} <= roots


def test_every_file_of_an_imported_package_is_in_the_image(image: Image) -> None:
    """Templates, translations, SQL and TOML are read beside the code: a package comes whole."""
    walk = walk_imports(image, sorted(first_party_roots() - {"tests", "bench"}))
    roots = {m.split(".")[0] for m in walk.modules} | {"migrations", "strategies"}
    lacking = []
    for root in sorted(roots):
        directory = ROOT / root
        if not directory.is_dir():
            continue
        for path in directory.rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if "__pycache__" in relative or not path.is_file():
                continue
            if not image.has(f"{image.workdir}/{relative}"):
                lacking.append(relative)
    assert not lacking, f"left out of the image: {lacking[:20]}"
    assert any(p.endswith(".sql") for p in image.files)
    assert any(p.endswith("default.toml") for p in image.files)


def test_tests_benchmarks_local_state_and_secrets_stay_out_of_the_image(image: Image) -> None:
    relative = [p.removeprefix(image.workdir + "/") for p in image.files]
    for prefix in ("tests/", "bench/", ".git/", ".venv/", ".state/", "deploy/k8s/"):
        assert not [p for p in relative if p.startswith(prefix)], prefix
    assert not [p for p in relative if "__pycache__" in p or p.endswith(".pyc")]
    secret_like = re.compile(r"(^|/)(\.env(\..*)?|[^/]*\.(pem|key|crt))$")
    for name in ("a/.env", ".env.prod", "x/y/client.key", "ca.crt", "deploy/tls.pem"):
        assert secret_like.search(name)  # the pattern below means what it says
    assert not [p for p in relative if secret_like.search(p)]


def test_dockerignore_keeps_secret_looking_files_out_when_they_appear(tmp_path: Path) -> None:
    from tests.deploy.image import DOCKERIGNORE, DockerIgnore

    ignore = DockerIgnore.read(DOCKERIGNORE)
    for name in (".env", "admin/.env", "deploy/client.key", "tls.pem", "stack/ca.crt", "x/__pycache__/a.pyc"):
        assert ignore.excluded(name), name
    kept = (
        "worker.py",
        "admin/__main__.py",
        "migrations/0001_initial.sql",
        "deploy/register_search_attributes.sh",
    )
    for name in kept:
        assert not ignore.excluded(name), name


def test_bytecode_is_compiled_after_the_sources_are_copied() -> None:
    """The sandbox re-imports the workflow modules for each workflow; PYTHONDONTWRITEBYTECODE=1 (needed on a
    read-only root filesystem) would otherwise leave them to be compiled from source every time."""
    instructions = parse_dockerfile((ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8"))
    last_copy = max(i for i, ins in enumerate(instructions) if ins.keyword == "COPY")
    compiles = [
        i
        for i, ins in enumerate(instructions)
        if ins.keyword == "RUN" and re.search(r"python -m compileall\b.*\s/app\b", ins.arguments)
    ]
    assert compiles and compiles[-1] > last_copy, "no `python -m compileall ... /app` after the last COPY"
    env = build_image().env
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    instructions = parse_dockerfile((ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8"))
    users = [ins.arguments for ins in instructions if ins.keyword == "USER"]
    assert users, "no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "Kubernetes runAsNonRoot can only verify a numeric user"
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in load_all(path):
            spec = doc.get("spec", {}).get("template", {}).get("spec")
            if spec:
                assert spec["securityContext"]["runAsUser"] == int(uid), path


def test_the_old_dockerfile_would_have_been_caught(tmp_path: Path) -> None:
    """The check has teeth: the Dockerfile before issue 12 copied packages one by one and left out admin/."""
    old = tmp_path / "Dockerfile"
    packages = ("domain", "workflows", "activities", "starter", "stack", "demo", "migrations", "strategies")
    old.write_text(
        "FROM python:3.11-slim\nWORKDIR /app\nCOPY pyproject.toml README.md ./\n"
        + "".join(f"COPY {p} ./{p}\n" for p in packages)
        + 'COPY worker.py ./\nCMD ["python", "worker.py"]\n',
        encoding="utf-8",
    )
    from tests.deploy.image import DOCKERIGNORE

    image = build_image(old, DOCKERIGNORE)
    _, problem = resolve(image, ["python", "-m", "admin"])
    assert problem is not None and "admin" in problem


def test_entry_points_import_from_a_copy_of_the_image_files_with_precompiled_bytecode(
    image: Image, tmp_path: Path
) -> None:
    """The closest thing to running the image here: its /app, materialised from the file list, compiled the
    way the Dockerfile does, and every runnable module imported (or, for a bare __main__, found) by the
    venv's Python with only that copy on the path. Catches imports the AST walk cannot see (importlib)."""
    app = tmp_path / "app"
    prefix = image.workdir + "/"
    for path, source in image.files.items():
        if path.startswith(prefix):
            target = app / path.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(app)}
    compiled = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", str(app)], env=environment, capture_output=True
    )
    assert compiled.returncode == 0, compiled.stdout.decode() + compiled.stderr.decode()
    modules = sorted(runnable_modules(image))
    roots = sorted(first_party_roots() - {"tests", "bench"})
    probe = f"""
import importlib, importlib.util, sys
for name in {modules!r}:
    if name.endswith("__main__"):  # runs on import: only find it, and import its package
        assert importlib.util.find_spec(name) is not None, name
        importlib.import_module(name.rpartition(".")[0])
    else:
        importlib.import_module(name)
importlib.import_module("workflows.registry")
outside = sorted(
    name for name, module in list(sys.modules.items())
    if name.split(".")[0] in {roots!r} and getattr(module, "__file__", None)
    and not module.__file__.startswith({str(app) + "/"!r})
)
assert not outside, outside
spec = importlib.util.find_spec("workflows.loan_collection")
assert spec.cached and __import__("os").path.exists(spec.cached), "no precompiled bytecode"
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=app, env=environment, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
