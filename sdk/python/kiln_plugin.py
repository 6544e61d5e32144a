"""Helpers for kiln actions written in Python and built with componentize-py.

An action is one function plus one line::

    import kiln_plugin as kp

    META = kp.Metadata("greet", "0.1.0", "Greets someone",
                       inputs=[kp.Input("name", "who to greet", default="world")],
                       outputs=[kp.Output("greeting", "what was said")])

    def run(ctx: kp.Context) -> dict:
        return {"greeting": "hello, " + ctx.input("name")}

    WitWorld = kp.action(META, run)

`ctx.input(name)` applies the declared default and raises `InputError` (the
step fails with `invalid-input`) when a required input is missing;
`kp.Failed(message)` fails the step with `failed`. Any other exception is a
bug in the plugin: it traps, and the host fails the step with the traceback.

This module imports the generated bindings (`wit_world`) only when the
component runs, so plugin logic is unit-testable with plain `python3`:
`kp.testing.context(META, {...})` builds a context and
`kp.testing.TestHost` records log lines and serves secrets.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional
import os

__all__ = [
    "Input", "Output", "Metadata", "Context", "InputError", "Failed",
    "fs_read", "fs_write", "network", "env", "secret_capability",
    "action", "log", "debug", "info", "warn", "error", "secret", "progress",
]


@dataclass
class Input:
    """One input under `with:`. Required unless it has a default or `required=False`."""
    name: str
    description: str
    required: Optional[bool] = None
    default: Optional[str] = None

    def is_required(self) -> bool:
        return self.default is None if self.required is None else self.required


@dataclass
class Output:
    """One output the action may return."""
    name: str
    description: str


@dataclass
class Capability:
    """A capability the pipeline must grant under `permissions:`."""
    kind: str  # "fs", "network", "env", "secret"
    value: str


def fs_read() -> Capability:
    """`permissions.fs: read`."""
    return Capability("fs", "read")


def fs_write() -> Capability:
    """`permissions.fs: write`."""
    return Capability("fs", "write")


def network(what: str) -> Capability:
    """`permissions.network`; `what` says what the plugin connects to."""
    return Capability("network", what)


def env(name: str) -> Capability:
    """`permissions.env`: environment variable `name`."""
    return Capability("env", name)


def secret_capability(name: str) -> Capability:
    """`permissions.secrets`: secret `name`, read with `secret(name)`."""
    return Capability("secret", name)


@dataclass
class Metadata:
    """What the plugin is and needs."""
    name: str
    version: str
    description: str
    inputs: List[Input] = field(default_factory=list)
    outputs: List[Output] = field(default_factory=list)
    capabilities: List[Capability] = field(default_factory=list)


class InputError(Exception):
    """A missing or malformed input: the step fails with `invalid-input`."""


class Failed(Exception):
    """The action ran and failed: the step fails with this message."""


class Context:
    """What a step hands to its action."""

    def __init__(self, inputs: Dict[str, str], specs: List[Input],
                 workspace: Optional[str], job: str, step: str, run_id: int):
        self.inputs = dict(inputs)
        self.specs = {s.name: s for s in specs}
        self.workspace = workspace
        self.job = job
        self.step = step
        self.run_id = run_id

    def input(self, name: str) -> str:
        """Input `name`, or its default; `InputError` if it is required and missing."""
        value = self.optional_input(name)
        if value is None:
            raise InputError(f"input `{name}` is required: set it under `with:`")
        return value

    def optional_input(self, name: str) -> Optional[str]:
        """Input `name`, or its default, or `None`."""
        if name in self.inputs:
            return self.inputs[name]
        spec = self.specs.get(name)
        return spec.default if spec else None

    def int_input(self, name: str) -> int:
        """Input `name` as a whole number."""
        raw = self.input(name)
        try:
            return int(raw.strip())
        except ValueError:
            raise InputError(f"input `{name}` is `{raw}`: expected a whole number") from None

    def bool_input(self, name: str) -> bool:
        """Input `name` as `true` or `false`."""
        raw = self.input(name)
        if raw not in ("true", "false"):
            raise InputError(f"input `{name}` is `{raw}`: expected `true` or `false`")
        return raw == "true"

    def workspace_path(self, input_name: str, relative: str) -> str:
        """`relative` inside the workspace; absolute paths and `..` are an `InputError`."""
        parts = relative.replace("\\", "/").split("/")
        if not relative or relative.startswith("/") or ".." in parts:
            raise InputError(
                f"input `{input_name}` is `{relative}`: expected a path relative to the workspace, without `..`")
        if self.workspace is None:
            raise Failed("this action needs the workspace: grant `permissions: { fs: read }` (or `write`)")
        return os.path.join(self.workspace, relative)


# --- the host: real imports inside a component, a test double natively ---

# Imported here, not inside a function: componentize-py bundles the binding
# modules the app imports while it is being built, and `host` is not one the
# world module imports itself. Natively there are no bindings.
try:
    from wit_world.imports import host as _wit_host
    from wit_world.imports import types as _wit_types
except ImportError:
    _wit_host = _wit_types = None

_host = None


def _backend():
    global _host
    if _host is None and _wit_host is not None:
        levels = {n: getattr(_wit_types.LogLevel, n.upper()) for n in ("trace", "debug", "info", "warn", "error")}

        class _Real:
            def log(self, level, message):
                _wit_host.log(levels[level], message)

            def progress(self, percent, message):
                _wit_host.progress(min(percent, 100), message)

            def secret(self, name):
                return _wit_host.secret(name)

        _host = _Real()
    return _host


def log(level: str, message: str) -> None:
    """Writes a line to the step's log; `level` is trace|debug|info|warn|error."""
    b = _backend()
    if b is None:
        print(f"[{level}] {message}")
    else:
        b.log(level, message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)


def progress(percent: int, message: str) -> None:
    """Reports progress of a long operation."""
    b = _backend()
    if b is not None:
        b.progress(percent, message)


def secret(name: str) -> Optional[str]:
    """Secret `name` if the pipeline granted it to this step, else `None`."""
    b = _backend()
    return None if b is None else b.secret(name)


# --- the export: metadata() and run() in the generated types ---

def _wit_metadata(meta: Metadata):
    from wit_world.imports import types
    caps = []
    for c in meta.capabilities:
        if c.kind == "fs":
            caps.append(types.Capability_Fs(types.FsAccess.WRITE if c.value == "write" else types.FsAccess.READ))
        elif c.kind == "network":
            caps.append(types.Capability_Network(c.value))
        elif c.kind == "env":
            caps.append(types.Capability_Env(c.value))
        else:
            caps.append(types.Capability_Secret(c.value))
    return types.Metadata(
        name=meta.name, version=meta.version, description=meta.description,
        inputs=[types.InputSpec(i.name, i.description, i.is_required(), i.default) for i in meta.inputs],
        outputs=[types.OutputSpec(o.name, o.description) for o in meta.outputs],
        capabilities=caps,
    )


def action(meta: Metadata, run: Callable[[Context], Dict[str, object]]):
    """The `WitWorld` class componentize-py exports for the `action` world."""

    class WitWorld:
        def metadata(self):
            return _wit_metadata(meta)

        def run(self, context):
            from componentize_py_types import Err
            from wit_world.imports import action_types, types
            ctx = Context({kv.key: kv.value for kv in context.inputs}, meta.inputs,
                          context.workspace, context.job, context.step, context.run_id)
            try:
                outputs = run(ctx) or {}
            except InputError as e:
                raise Err(action_types.ActionError_InvalidInput(str(e)))
            except Failed as e:
                raise Err(action_types.ActionError_Failed(str(e)))
            return [types.KeyValue(k, str(v)) for k, v in outputs.items()]

    return WitWorld


class testing:
    """Native test helpers: no component, no host."""

    @staticmethod
    def context(meta: Metadata, inputs: Dict[str, str], workspace: Optional[str] = None) -> Context:
        """A context for `meta` with `inputs`, job and step `test`, run 1."""
        return Context(inputs, meta.inputs, workspace, "test", "test", 1)

    class TestHost:
        """Records log lines (`logs`) and progress (`reports`), serves `secrets`: `with TestHost(...) as h:`."""

        def __init__(self, secrets: Optional[Dict[str, str]] = None):
            self.secrets = dict(secrets or {})
            self.logs: List[tuple] = []
            self.reports: List[tuple] = []

        def log(self, level, message):
            self.logs.append((level, message))

        def progress(self, percent, message):
            self.reports.append((min(percent, 100), message))

        def secret(self, name):
            return self.secrets.get(name)

        def __enter__(self):
            global _host
            self._previous, _host = _host, self
            return self

        def __exit__(self, *exc):
            global _host
            _host = self._previous
            return False
