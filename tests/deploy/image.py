"""What deploy/Dockerfile puts in the image, worked out from the files without a container engine.

The machines of this project have a Docker client but no engine and no registry for base images, so the
tests cannot build the image. Instead they read the Dockerfile's COPY instructions and the
Dockerfile.dockerignore patterns, list the files the build context would contribute, and follow the imports
of every entry point through that list. Only what the Dockerfile here uses is understood (COPY of context
paths, WORKDIR, ENV, RUN, CMD, and dockerignore patterns with *, ?, ** and !); anything else fails loudly.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Image:
    workdir: str
    env: dict[str, str]
    cmd: list[str]
    instructions: list[Instruction]
    files: dict[str, Path] = field(default_factory=dict)  # path in the image -> file in the build context

    def has(self, path: str) -> bool:
        return path in self.files


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A dockerignore pattern (Go filepath.Match plus **) as a regex over context-relative POSIX paths."""
    out = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
            continue
        if pattern.startswith("**", index):
            out += ".*"
            index += 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            raise AssertionError(f"dockerignore {pattern!r}: character classes are not understood here")
        else:
            out += re.escape(char)
        index += 1
    return re.compile(out)


@dataclass
class DockerIgnore:
    rules: list[tuple[bool, re.Pattern[str]]]  # (excludes, pattern) in file order; the last match wins

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
            rules.append((not negated, _pattern_regex(pattern)))
        return cls(rules)

    @property
    def has_exceptions(self) -> bool:
        return any(not excludes for excludes, _ in self.rules)

    def excluded(self, relative: str) -> bool:
        """Docker's rule: a pattern matching a path or any of its parent directories excludes it."""
        parts = relative.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for excludes, regex in self.rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                verdict = excludes
        return verdict


def context_files(ignore: DockerIgnore, root: Path = ROOT) -> dict[str, Path]:
    """Every file of the build context that the dockerignore lets through, by context-relative path."""
    found: dict[str, Path] = {}
    for directory, subdirectories, files in os.walk(root):
        relative_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        if not ignore.has_exceptions:  # a pruned directory cannot be re-included: skip .venv and friends
            subdirectories[:] = [d for d in subdirectories if not ignore.excluded(prefix + d)]
        for name in files:
            if not ignore.excluded(prefix + name):
                found[prefix + name] = Path(directory) / name
    return found


def _absolute(path: str, workdir: str) -> str:
    return str(PurePosixPath(workdir, path)) if not path.startswith("/") else str(PurePosixPath(path))


def build_image(dockerfile: Path = DOCKERFILE, dockerignore: Path = DOCKERIGNORE) -> Image:
    instructions = parse_dockerfile(dockerfile.read_text(encoding="utf-8"))
    context = context_files(DockerIgnore.read(dockerignore))
    image = Image(workdir="/", env={}, cmd=[], instructions=instructions)
    for instruction in instructions:
        if instruction.keyword == "WORKDIR":
            image.workdir = _absolute(instruction.arguments, image.workdir)
        elif instruction.keyword == "ENV":
            for word in shlex.split(instruction.arguments):
                name, _, value = word.partition("=")
                image.env[name] = value
        elif instruction.keyword == "CMD":
            image.cmd = _exec_form(instruction.arguments)
        elif instruction.keyword in ("COPY", "ADD"):
            assert instruction.keyword == "COPY", "ADD is not understood here (use COPY)"
            words = [w for w in shlex.split(instruction.arguments) if not w.startswith("--chown")]
            assert not any(w.startswith("--") for w in words), f"COPY flags not understood: {instruction}"
            *sources, destination = words
            _copy(image, context, sources, destination)
    return image


def _exec_form(arguments: str) -> list[str]:
    import json

    value = json.loads(arguments)
    assert isinstance(value, list), f"CMD must be in exec form: {arguments}"
    return [str(v) for v in value]


def _copy(image: Image, context: dict[str, Path], sources: list[str], destination: str) -> None:
    target = _absolute(destination, image.workdir)
    for source in sources:
        source = os.path.normpath(source)
        if source == ".":
            for relative, path in context.items():
                image.files[str(PurePosixPath(target, relative))] = path
        elif source in context:  # a file: into a directory when the destination ends with /
            into = target
            if destination.endswith("/"):
                into = str(PurePosixPath(target, PurePosixPath(source).name))
            image.files[into] = context[source]
        else:  # a directory: its contents (not the directory itself) go to the destination
            under = [r for r in context if r.startswith(source + "/")]
            assert under, f"COPY {source}: nothing in the build context (missing or ignored)"
            for relative in under:
                image.files[str(PurePosixPath(target, relative[len(source) + 1 :]))] = context[relative]


# -- entry points and imports -------------------------------------------------------------------------------


def first_party_roots(root: Path = ROOT) -> set[str]:
    """Top-level packages and modules of the repository (what an import can mean here, not in a library)."""
    names = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in root.glob("*.py")}
    return names


def module_file(image: Image, module: str, *, main: bool = False) -> str | None:
    """The image path Python would load for `module` from the working directory, or None."""
    base = str(PurePosixPath(image.workdir, *module.split(".")))
    candidates = [f"{base}/__main__.py"] if main else [f"{base}.py", f"{base}/__init__.py"]
    if main:
        candidates.append(f"{base}.py")
    return next((c for c in candidates if image.has(c)), None)


@functools.cache
def _imports(path: Path, module: str, is_package: bool) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


@dataclass
class Walk:
    modules: set[str] = field(default_factory=set)  # first-party modules found in the image
    missing: set[str] = field(default_factory=set)  # first-party modules imported but not in the image


def walk_imports(image: Image, start: list[str], roots: set[str] | None = None) -> Walk:
    """Follow first-party imports from the `start` modules through the image's files."""
    roots = roots if roots is not None else first_party_roots()
    walk = Walk()
    queue = list(start)
    while queue:
        name = queue.pop()
        if name in walk.modules or name in walk.missing:
            continue
        path = module_file(image, name)
        if path is None:
            repo_has = (ROOT / (name.replace(".", "/") + ".py")).exists() or (
                ROOT / name.replace(".", "/") / "__init__.py"
            ).exists()
            if repo_has:  # a module of the repository that the image lacks
                walk.missing.add(name)
            continue  # otherwise an attribute (from a.b import c), not a module
        walk.modules.add(name)
        parts = name.split(".")
        queue.extend(".".join(parts[:n]) for n in range(1, len(parts)))  # parent packages run first
        is_package = path.endswith("/__init__.py")
        for imported in _imports(image.files[path], name, is_package):
            if imported.split(".")[0] in roots:
                queue.append(imported)
    return walk


@dataclass
class EntryPoint:
    where: str  # the manifest and the container that runs it
    argv: list[str]


def commands_of(argv: list[str]) -> list[list[str]]:
    """The commands one container runs: `sh -c "a && b"` is two."""
    if len(argv) >= 3 and argv[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and argv[1] == "-c":
        return [shlex.split(part) for part in re.split(r"&&|;|\|\|", argv[2]) if part.strip()]
    return [argv]


def resolve(image: Image, command: list[str]) -> tuple[list[str], str | None]:
    """(first-party modules the command starts, a problem or None)."""
    program, *rest = command
    if program in ("python", "python3"):
        if rest[:1] == ["-m"]:
            module = rest[1]
            path = module_file(image, module, main=True)
            if path is None:
                where = module.replace(".", "/")
                return [], f"`python -m {module}`: no {where}/__main__.py or {where}.py in the image"
            return [module, module + ".__main__"] if path.endswith("__main__.py") else [module], None
        script = _absolute(rest[0], image.workdir)
        if not image.has(script):
            return [], f"`python {rest[0]}`: {script} is not in the image"
        return [PurePosixPath(rest[0]).stem], None
    script = _absolute(program, image.workdir)
    if not image.has(script):
        return [], f"`{program}`: {script} is not in the image"
    if not os.access(image.files[script], os.X_OK):
        return [], f"`{program}` is not executable"
    # A shell script of the product runs Python through here-documents: follow what they import.
    text = image.files[script].read_text(encoding="utf-8")
    modules = re.findall(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", text, re.MULTILINE)
    return [a or b for a, b in modules], None
