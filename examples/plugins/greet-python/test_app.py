"""Native tests of the action's logic: `python3 -m unittest` here."""

import os
import tempfile
import unittest

import app
import kiln_plugin as kp


class GreetTest(unittest.TestCase):
    def test_renders_the_template_and_returns_the_first_line(self):
        with tempfile.TemporaryDirectory() as ws, kp.testing.TestHost() as host:
            with open(os.path.join(ws, "greeting.tmpl"), "w") as f:
                f.write("hello, {{ name }}!\nto {{ output }}\n")
            ctx = kp.testing.context(app.META, {"name": "kiln", "output": "out/g.txt"}, ws)
            self.assertEqual(app.run(ctx), {"path": "out/g.txt", "greeting": "hello, kiln!"})
            with open(os.path.join(ws, "out/g.txt")) as f:
                self.assertEqual(f.read(), "hello, kiln!\nto out/g.txt\n")
            self.assertEqual(host.logs, [("info", "wrote out/g.txt")])

    def test_a_missing_name_is_an_invalid_input(self):
        ctx = kp.testing.context(app.META, {}, "/nonexistent")
        with self.assertRaises(kp.InputError) as e:
            app.run(ctx)
        self.assertEqual(str(e.exception), "input `name` is required: set it under `with:`")

    def test_paths_stay_in_the_workspace(self):
        ctx = kp.testing.context(app.META, {"name": "x", "output": "../x"}, "/ws")
        with self.assertRaises(kp.InputError) as e:
            app.run(ctx)
        self.assertEqual(
            str(e.exception),
            "input `output` is `../x`: expected a path relative to the workspace, without `..`")


if __name__ == "__main__":
    unittest.main()
