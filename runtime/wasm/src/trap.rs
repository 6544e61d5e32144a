//! One-line explanations of why a guest stopped.

use wasmtime::Trap;

/// Returned by the epoch callback when the step is stopped or its deadline
/// passed; the engine reports those itself.
#[derive(Debug)]
pub(crate) struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the plugin was interrupted (step stopped or timed out)")
    }
}

impl std::error::Error for Interrupted {}

/// What a user should read about a failed guest call.
pub(crate) fn explain(err: &wasmtime::Error, memory_limit: usize) -> String {
    if err.downcast_ref::<Interrupted>().is_some() {
        return Interrupted.to_string();
    }
    let text = format!("{err:#}");
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::StackOverflow => {
                "stack overflow: the plugin recursed too deeply (wasm call stack exhausted)".into()
            }
            Trap::UnreachableCodeReached => {
                "the plugin panicked or aborted (wasm `unreachable` executed; its stderr above says why)"
                    .into()
            }
            Trap::Interrupt => Interrupted.to_string(),
            Trap::MemoryOutOfBounds => {
                "the plugin accessed memory out of bounds (in Rust and C guests usually a stack overflow from deep recursion)".into()
            }
            Trap::IntegerDivisionByZero => "the plugin divided by zero".into(),
            other => format!("the plugin trapped: {other}"),
        };
    }
    if text.contains("memory") && text.contains("grow")
        || text.contains("forcing a memory growth failure")
    {
        return format!(
            "the plugin exceeded its memory limit of {} MiB",
            memory_limit / (1024 * 1024)
        );
    }
    one_line(&text)
}

fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
