"""Native tests of the action's logic: `python3 -m unittest`."""

import unittest

import app
import kiln_plugin as kp


class AppTest(unittest.TestCase):
    def test_greets_the_default(self):
        with kp.testing.TestHost() as host:
            self.assertEqual(app.run(kp.testing.context(app.META, {})), {"greeting": "hello, world"})
            self.assertEqual(host.logs, [("info", "hello, world")])

    def test_greets_the_input(self):
        ctx = kp.testing.context(app.META, {"name": "kiln"})
        self.assertEqual(app.run(ctx)["greeting"], "hello, kiln")


if __name__ == "__main__":
    unittest.main()
