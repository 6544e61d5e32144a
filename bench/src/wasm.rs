//! `kiln-bench wasm`: plugin step start-up and concurrency, driving
//! kiln-wasm's [`WasmActions`] the way the engine does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_engine::{ActionExecutor, ActionExit, ActionRequest, StepControl};
use kiln_pipeline::Permissions;
use kiln_wasm::{Limits, NoArtifactStore, Runtime, WasmActions};
use tokio_util::sync::CancellationToken;

use crate::stats::Summary;

/// What to measure.
#[derive(Debug, Clone)]
pub struct WasmBench {
    /// Sequential cached step starts to time.
    pub steps: usize,
    /// Plugin steps alive at once in the concurrency round.
    pub concurrent: usize,
}

fn request(reference: &str, inputs: Vec<(String, String)>) -> ActionRequest {
    ActionRequest {
        reference: reference.into(),
        job: "bench".into(),
        step: 0,
        step_name: "bench".into(),
        run_id: 1,
        inputs,
        permissions: Permissions::default(),
        workspace: std::env::temp_dir(),
        env: Vec::new(),
        secrets: Vec::new(),
        deadline: None,
    }
}

fn control() -> StepControl {
    StepControl {
        stop: CancellationToken::new(),
        kill: CancellationToken::new(),
        grace: Duration::from_secs(1),
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

impl WasmBench {
    /// Runs every round and prints the figures.
    pub fn run(&self) -> Result<(), String> {
        let cache = std::env::temp_dir().join(format!("kiln-bench-wasm-{}", std::process::id()));
        let result = self.rounds(&cache);
        let _ = std::fs::remove_dir_all(&cache);
        result
    }

    fn rounds(&self, cache: &std::path::Path) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let noop = std::fs::read(kiln_test_plugins::NOOP).map_err(|e| e.to_string())?;
        let hostile = std::fs::read(kiln_test_plugins::HOSTILE).map_err(|e| e.to_string())?;
        let (noop_digest, hostile_digest) = (kiln_wasm::sha256(&noop), kiln_wasm::sha256(&hostile));
        let limits = Limits {
            instances: (self.concurrent as u32 + 16).max(1000),
            ..Limits::default()
        };

        // First compile, then a fresh runtime loading from the disk cache.
        let first =
            Runtime::new(Some(PathBuf::from(cache)), limits.clone()).map_err(|e| e.to_string())?;
        let started = Instant::now();
        rt.block_on(first.load("noop", &noop, &noop_digest))
            .map_err(|e| e.to_string())?;
        let compile = started.elapsed();
        drop(first);
        let runtime =
            Arc::new(Runtime::new(Some(PathBuf::from(cache)), limits).map_err(|e| e.to_string())?);
        let started = Instant::now();
        let plugin = rt
            .block_on(runtime.load("noop", &noop, &noop_digest))
            .map_err(|e| e.to_string())?;
        let cached = started.elapsed();
        let sleeper = rt
            .block_on(runtime.load("hostile", &hostile, &hostile_digest))
            .map_err(|e| e.to_string())?;
        println!(
            "wasm: first load (Cranelift compile + cache write) {compile:.2?}; cached load from disk {cached:.2?} ({:.0}x faster)",
            compile.as_secs_f64() / cached.as_secs_f64()
        );

        let mut actions = WasmActions::new(runtime.clone(), Arc::new(NoArtifactStore));
        actions.insert("noop", plugin);
        actions.insert("hostile", sleeper);
        let actions = Arc::new(actions);

        // Sequential step starts: step ready → guest ran → exit back.
        let mut samples = Vec::with_capacity(self.steps);
        for _ in 0..self.steps + 50 {
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let started = Instant::now();
            let exit = rt.block_on(actions.run_action(request("noop", Vec::new()), tx, control()));
            samples.push(started.elapsed());
            if exit != ActionExit::Success(Vec::new()) {
                return Err(format!("noop step failed: {exit:?}"));
            }
        }
        let summary = Summary::of(&samples[50..]).ok_or("no samples")?;
        println!(
            "wasm: cached no-op step, step ready → guest ran and returned ({} steps): median {:.1?}, p99 {:.1?} (budget ≤ 100 µs median)",
            self.steps, summary.median, summary.p99
        );

        // Concurrency: N steps that each wait 500 ms inside the guest.
        let before = rss_kib("VmRSS:");
        let n = self.concurrent;
        let started = Instant::now();
        let peak = rt.block_on(async {
            let mut tasks = Vec::with_capacity(n);
            for _ in 0..n {
                let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
                let inputs = vec![
                    ("mode".into(), "sleep".into()),
                    ("target".into(), "500".into()),
                ];
                tasks.push(actions.run_action(request("hostile", inputs), tx, control()));
            }
            let handles: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let peak = rss_kib("VmRSS:");
            for h in handles {
                match h.await {
                    Ok(ActionExit::Success(_)) => {}
                    other => eprintln!("sleeping step: {other:?}"),
                }
            }
            peak
        });
        let wall = started.elapsed();
        println!(
            "wasm: {n} concurrent plugin steps (each waits 500 ms in the guest): {:.0} steps/s, wall {wall:.2?}; runner RSS {} MiB → {} MiB while waiting = {} KiB per waiting step (budget ≤ 128 KiB)",
            n as f64 / wall.as_secs_f64(),
            before / 1024,
            peak / 1024,
            peak.saturating_sub(before) / n as u64
        );
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let started = Instant::now();
        let no_ops: Vec<_> = (0..n)
            .map(|_| actions.run_action(request("noop", Vec::new()), tx.clone(), control()))
            .collect();
        rt.block_on(async {
            for h in no_ops.into_iter().map(tokio::spawn) {
                let _ = h.await;
            }
        });
        let wall = started.elapsed();
        println!(
            "wasm: {n} concurrent no-op plugin steps: {:.0} steps/s (wall {wall:.2?})",
            n as f64 / wall.as_secs_f64()
        );
        Ok(())
    }
}
