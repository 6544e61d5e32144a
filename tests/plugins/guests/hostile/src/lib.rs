//! A plugin that declares no capabilities and then tries everything; the
//! `mode` input picks the attack.
wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "action" });

use std::io::{Read, Write};

use kiln::plugin::host;
use kiln::plugin::types::InputSpec;

struct Hostile;

fn input<'a>(context: &'a Context, name: &str) -> &'a str {
    context.inputs.iter().find(|kv| kv.key == name).map_or("", |kv| kv.value.as_str())
}

fn failed(what: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(format!("{what}: {e}"))
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(depth % 256) as usize] = depth as u8;
    let mut next = [0u8; 256];
    next.copy_from_slice(pad);
    recurse(depth + 1, &mut next) + u64::from(next[0])
}

impl Guest for Hostile {
    fn metadata() -> Metadata {
        Metadata {
            name: "hostile".into(),
            version: "0.1.0".into(),
            // A terminal escape (set the window title) and a carriage
            // return, which `plugin inspect` must print inert.
            description: "misbehaves on purpose\x1b]0;pwned\x07\rgone".into(),
            inputs: vec![
                InputSpec { name: "mode".into(), description: "which attack".into(), required: true, default: None },
                InputSpec { name: "target".into(), description: "path or address".into(), required: false, default: None },
            ],
            outputs: vec![],
            capabilities: vec![],
        }
    }

    fn run(context: Context) -> Result<Vec<KeyValue>, ActionError> {
        let target = input(&context, "target");
        let done = |what: String| Ok(vec![KeyValue { key: "result".into(), value: what }]);
        match input(&context, "mode") {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "memory" => {
                // Grow towards 4 GiB in 64 MiB steps.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                for _ in 0..64 {
                    hoard.push(vec![1u8; 64 << 20]);
                }
                done(format!("allocated {} chunks", hoard.len()))
            }
            "recursion" => {
                let mut pad = [0u8; 256];
                done(format!("{}", recurse(0, &mut pad)))
            }
            "flood" => {
                // 1 GiB to stdout.
                let chunk = vec![b'x'; 1 << 20];
                let mut out = std::io::stdout();
                for _ in 0..1024 {
                    let _ = out.write_all(&chunk);
                }
                done("flooded".into())
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "read" => {
                let mut text = String::new();
                std::fs::File::open(target)
                    .and_then(|mut f| f.read_to_string(&mut text))
                    .map_err(|e| failed(&format!("cannot read `{target}`"), e))?;
                done(format!("read {} bytes of {target}", text.len()))
            }
            "write" => {
                std::fs::write(target, "pwned").map_err(|e| failed(&format!("cannot write `{target}`"), e))?;
                done(format!("wrote {target}"))
            }
            "connect" => {
                let mut stream = std::net::TcpStream::connect(target)
                    .map_err(|e| failed(&format!("cannot connect to `{target}`"), e))?;
                let _ = stream.write_all(b"hello from the plugin\n");
                done(format!("connected to {target}"))
            }
            "lookup" => {
                use std::net::ToSocketAddrs;
                let addrs: Vec<_> = target
                    .to_socket_addrs()
                    .map_err(|e| failed(&format!("cannot resolve `{target}`"), e))?
                    .collect();
                done(format!("resolved {target} to {addrs:?}"))
            }
            "secret" => match host::secret(target) {
                Some(value) => done(format!("got secret {target} = {value}")),
                None => done(format!("no secret {target}")),
            },
            "sleep" => {
                let ms: u64 = target.parse().unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                done(format!("slept {ms} ms"))
            }
            "outputs" => {
                // `count`: more entries than allowed; else 2 MiB in 8 entries.
                let (n, size) = if target == "count" { (5000, 1) } else { (8, 256 << 10) };
                Ok((0..n)
                    .map(|i| KeyValue { key: format!("k{i}"), value: "v".repeat(size) })
                    .collect())
            }
            "big-error" => Err(ActionError::Failed(format!("{}end", "e".repeat(1 << 20)))),
            "big-log" => {
                host::log(host::LogLevel::Info, &format!("{}end", "l".repeat(1 << 20)));
                done("logged".into())
            }
            "env" => done(format!("env: {:?}", std::env::vars().collect::<Vec<_>>())),
            other => Err(ActionError::InvalidInput(format!("unknown mode `{other}`"))),
        }
    }
}

export!(Hostile);
