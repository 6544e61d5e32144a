"""Tests of kiln_plugin's glue against the real generated bindings.

componentize-py writes the `action` world's Python bindings (pure dataclasses;
the host functions are stubs outside a component) into a temp directory, so
the conversions `kp.action` performs are checked without a host:
`python3 -m unittest` here (tests/all/plugin_authoring.rs runs it).
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
WIT = os.path.join(HERE, "..", "..", "wit", "v0.1.0")

import kiln_plugin as kp


def setUpModule():
    global _bindings
    _bindings = tempfile.TemporaryDirectory()
    script = "import sys\nfrom componentize_py import script\nsys.argv[0] = 'componentize-py'\nsys.exit(script())"
    subprocess.run([sys.executable, "-c", script, "-d", WIT, "-w", "action", "bindings", _bindings.name],
                   check=True, stdout=subprocess.DEVNULL)
    sys.path.insert(0, _bindings.name)


def tearDownModule():
    sys.path.remove(_bindings.name)
    _bindings.cleanup()


META = kp.Metadata(
    "t", "1.2.3", "a test action",
    inputs=[kp.Input("name", "who"), kp.Input("n", "how many", default="2"),
            kp.Input("opt", "optional", required=False)],
    outputs=[kp.Output("said", "what")],
    capabilities=[kp.fs_write(), kp.network("the `url` input"), kp.env("HOME"), kp.secret_capability("TOKEN")],
)


def run(ctx):
    if ctx.input("name") == "fail":
        raise kp.Failed("it failed")
    if ctx.input("name") == "bug":
        raise ZeroDivisionError("bug")
    count = ctx.int_input("n")
    kp.info("running")
    return {"said": "hi " + ctx.input("name"), "count": count}


class GlueTest(unittest.TestCase):
    def world(self):
        return kp.action(META, run)()

    def context(self, **inputs):
        from wit_world.imports import action_types, types
        return action_types.Context([types.KeyValue(k, v) for k, v in inputs.items()], "/ws", "j", "s", 7)

    def test_metadata_converts_to_the_wit_record(self):
        from wit_world.imports import types
        m = self.world().metadata()
        self.assertIsInstance(m, types.Metadata)
        self.assertEqual((m.name, m.version, m.description), ("t", "1.2.3", "a test action"))
        self.assertEqual(m.inputs, [types.InputSpec("name", "who", True, None),
                                    types.InputSpec("n", "how many", False, "2"),
                                    types.InputSpec("opt", "optional", False, None)])
        self.assertEqual(m.outputs, [types.OutputSpec("said", "what")])
        self.assertEqual(m.capabilities, [types.Capability_Fs(types.FsAccess.WRITE),
                                          types.Capability_Network("the `url` input"),
                                          types.Capability_Env("HOME"),
                                          types.Capability_Secret("TOKEN")])

    def test_outputs_are_key_values_with_string_values(self):
        from wit_world.imports import types
        with kp.testing.TestHost() as host:
            out = self.world().run(self.context(name="kiln"))
        self.assertEqual(out, [types.KeyValue("said", "hi kiln"), types.KeyValue("count", "2")])
        self.assertEqual(host.logs, [("info", "running")])

    def test_errors_become_action_error_variants(self):
        from componentize_py_types import Err
        from wit_world.imports import action_types
        with self.assertRaises(Err) as e:
            self.world().run(self.context())
        self.assertEqual(e.exception.value,
                         action_types.ActionError_InvalidInput("input `name` is required: set it under `with:`"))
        with self.assertRaises(Err) as e, kp.testing.TestHost():
            self.world().run(self.context(name="x", n="ten"))
        self.assertEqual(e.exception.value,
                         action_types.ActionError_InvalidInput("input `n` is `ten`: expected a whole number"))
        with self.assertRaises(Err) as e:
            self.world().run(self.context(name="fail"))
        self.assertEqual(e.exception.value, action_types.ActionError_Failed("it failed"))

    def test_other_exceptions_are_bugs_and_propagate(self):
        with self.assertRaises(ZeroDivisionError):
            self.world().run(self.context(name="bug"))

    def test_secrets_and_progress_go_to_the_host(self):
        with kp.testing.TestHost(secrets={"TOKEN": "s3"}) as host:
            self.assertEqual(kp.secret("TOKEN"), "s3")
            self.assertIsNone(kp.secret("OTHER"))
            kp.progress(150, "almost")
        self.assertEqual(host.reports, [(100, "almost")])

    def test_workspace_paths_stay_inside(self):
        ctx = kp.testing.context(META, {}, "/ws")
        self.assertEqual(ctx.workspace_path("out", "a/b.txt"), "/ws/a/b.txt")
        for bad in ["/etc/passwd", "../x", "a/../../x", ""]:
            with self.assertRaises(kp.InputError) as e:
                ctx.workspace_path("out", bad)
            self.assertEqual(str(e.exception),
                             f"input `out` is `{bad}`: expected a path relative to the workspace, without `..`")
        with self.assertRaises(kp.Failed):
            kp.testing.context(META, {}).workspace_path("out", "a")


if __name__ == "__main__":
    unittest.main()
