"""{{name}}: a kiln action in Python (componentize-py).

Build: `kiln plugin build` (or `componentize-py -d wit -w action componentize app -o dist/{{name}}.wasm`).
Test:  `python3 -m unittest`.
"""

import kiln_plugin as kp

META = kp.Metadata(
    "{{name}}", "0.1.0", "Says hello",
    inputs=[kp.Input("name", "who to greet", default="world")],
    outputs=[kp.Output("greeting", "what was said")],
    # Declare what the action needs; the pipeline grants it under `permissions:`.
    capabilities=[],
)


def run(ctx: kp.Context) -> dict:
    greeting = f"hello, {ctx.input('name')}"
    kp.info(greeting)
    return {"greeting": greeting}


# The export componentize-py looks for.
WitWorld = kp.action(META, run)
