//! `kiln-bench resolve`: what verifying plugins costs before a run starts.
//!
//! - **Verified read**: reading a pinned component back from the plugin
//!   store (open, read, re-hash, compare) against the baseline of hashing
//!   the same bytes already in memory — the store should add little beyond
//!   the SHA-256 every read pays by design.
//! - **Locked resolution**: `Resolver::resolve` in `--locked` mode of N
//!   pinned, digest-addressed references whose blobs are stored (no
//!   network): the per-reference cost a `kiln run --locked` pays before the
//!   first job starts.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kiln_fetch::{Client, Lockfile, Mode, Pin, PluginStore, Reference, Resolver};
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::stats::{Summary, ms, us};

/// Parameters of one `resolve` benchmark.
#[derive(Debug, Clone)]
pub struct ResolveBench {
    /// Component sizes for the verified-read measurement, in bytes.
    pub sizes: Vec<usize>,
    /// References in the locked-resolution measurement.
    pub references: usize,
    /// Timed repetitions of each measurement.
    pub iterations: usize,
}

fn fetch_error(what: &str) -> impl FnOnce(kiln_fetch::Error) -> Error + '_ {
    move |e| Error::Load(format!("{what}: {e}"))
}

/// A component of `size` bytes: the component preamble, then filler that
/// differs per `seed` so every blob has its own digest.
fn component(size: usize, seed: u64) -> Vec<u8> {
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    let mut rng = fastrand::Rng::with_seed(seed);
    bytes.extend((8..size.max(8)).map(|_| rng.u8(..)));
    bytes
}

impl ResolveBench {
    /// Runs both measurements, printing a line per figure.
    pub fn run(&self) -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(Error::io("creating a temp dir"))?;
        let store = PluginStore::open(&dir.path().join("store"))
            .map_err(fetch_error("opening the store"))?;
        for &size in &self.sizes {
            self.verified_read(&store, size)?;
        }
        self.locked(&store, dir.path())
    }

    fn verified_read(&self, store: &PluginStore, size: usize) -> Result<(), Error> {
        let bytes = component(size, size as u64);
        let digest = store.put(&bytes).map_err(fetch_error("storing"))?;
        let mut read = Vec::with_capacity(self.iterations);
        let mut hash = Vec::with_capacity(self.iterations);
        for _ in 0..self.iterations + 2 {
            let started = Instant::now();
            black_box(store.read(&digest).map_err(fetch_error("reading"))?);
            read.push(started.elapsed());
            let started = Instant::now();
            black_box(Sha256::digest(black_box(&bytes)));
            hash.push(started.elapsed());
        }
        // The first two rounds warm the page cache and the allocator.
        let read = Summary::of(&read[2..]).expect("samples");
        let hash = Summary::of(&hash[2..]).expect("samples");
        let mib = size as f64 / (1024.0 * 1024.0);
        println!(
            "verified read {:>6.1} MiB   median {:>11} ({:>7.1} MiB/s)   sha256 in memory {:>11} ({:>7.1} MiB/s)   ratio {:.2}×",
            mib,
            ms(read.median),
            mib / read.median.as_secs_f64(),
            ms(hash.median),
            mib / hash.median.as_secs_f64(),
            read.median.as_secs_f64() / hash.median.as_secs_f64(),
        );
        Ok(())
    }

    fn locked(&self, store: &PluginStore, dir: &std::path::Path) -> Result<(), Error> {
        let mut lock = Lockfile::empty(dir.join("kiln.lock"));
        let mut references = Vec::new();
        for i in 0..self.references {
            let bytes = component(64 * 1024, 1_000 + i as u64);
            let digest = store.put(&bytes).map_err(fetch_error("storing"))?;
            let text = format!("https://plugins.invalid/p{i}.wasm#sha256={digest}");
            let reference = Reference::parse(&text).map_err(|e| Error::Load(e.to_string()))?;
            lock.set(&reference.to_string(), Pin::new(digest));
            references.push(reference);
        }
        let client = Client::new();
        let none = |_: &str, _: u32| None;
        let resolver = Resolver::new(store, &client, &none, dir);
        let mut samples = Vec::with_capacity(self.iterations);
        for _ in 0..self.iterations + 2 {
            let started = Instant::now();
            for reference in &references {
                black_box(
                    resolver
                        .resolve(reference, &mut lock, Mode::Locked)
                        .map_err(fetch_error("resolving"))?,
                );
            }
            samples.push(started.elapsed());
        }
        let summary = Summary::of(&samples[2..]).expect("samples");
        let per = |d: Duration| d / self.references.max(1) as u32;
        println!(
            "locked resolution of {} pinned 64 KiB components from the store   median {:>11} ({} per reference)   p99 {:>11}",
            self.references,
            ms(summary.median),
            us(per(summary.median)),
            ms(summary.p99),
        );
        Ok(())
    }
}
