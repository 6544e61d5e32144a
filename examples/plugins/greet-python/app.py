"""The any-language example action, in Python: renders the `template` file
with the step's inputs (`{{ name }}` -> the `name` input, defaults included)
into `output`, and returns `path` and the first line as `greeting`.
../greet-rust does exactly the same."""

import os

import kiln_plugin as kp

META = kp.Metadata(
    "greet", "0.1.0", "Renders a greeting from a template into the workspace",
    inputs=[
        kp.Input("name", "who to greet"),
        kp.Input("template", "template file in the workspace", default="greeting.tmpl"),
        kp.Input("output", "file to write in the workspace", default="greeting.txt"),
    ],
    outputs=[kp.Output("path", "the file written"), kp.Output("greeting", "its first line")],
    capabilities=[kp.fs_write()],
)


def run(ctx: kp.Context) -> dict:
    ctx.input("name")  # required: checked before any file is touched
    template = ctx.input("template")
    output = ctx.input("output")
    template_path = ctx.workspace_path("template", template)
    output_path = ctx.workspace_path("output", output)
    try:
        with open(template_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise kp.Failed(f"cannot read template `{template}`: {e.strerror}")
    names = [i.name for i in META.inputs] + list(ctx.inputs)
    for name in names:
        value = ctx.optional_input(name)
        if value is not None:
            text = text.replace("{{ " + name + " }}", value)
    parent = os.path.dirname(output_path)
    # Only below the workspace: in the sandbox `/` itself does not exist, so
    # os.makedirs must not walk up to it. exist_ok: another step running at
    # the same time (the Rust twin in the example) may create it first.
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as f:
        f.write(text)
    kp.info(f"wrote {output}")
    greeting = text.splitlines()[0] if text else ""
    return {"path": output, "greeting": greeting}


WitWorld = kp.action(META, run)
