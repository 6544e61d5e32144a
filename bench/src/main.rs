//! `kiln-bench`: run with `cargo run --release -p kiln-bench -- <plan|scheduler|ingest|resolve|proxy|docker|wasm>`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln_bench::dag::DEFAULT_SEED;
use kiln_bench::plan::PlanBench;
use kiln_bench::scheduler::{SchedulerBench, locate_kiln};

/// kiln's benchmarks. Build with --release: debug figures mean nothing.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    which: Which,
}

#[derive(Subcommand)]
enum Which {
    /// Time parse + validate + plan of a generated random-DAG pipeline.
    Plan {
        /// Jobs in the pipeline; default: 1,000 and then 10,000.
        #[arg(long)]
        jobs: Option<usize>,
        /// Needs per job (fewer for the first few jobs).
        #[arg(long, default_value_t = 4)]
        needs: usize,
        /// Timed loads per size.
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        /// Generator seed.
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
    },
    /// Time verified plugin-store reads and `--locked` resolution of pinned plugins.
    Resolve {
        /// Component size for the verified read, in MiB; default: 1 and then 16.
        #[arg(long)]
        mib: Option<usize>,
        /// Pinned references resolved per round.
        #[arg(long, default_value_t = 50)]
        references: usize,
        /// Timed rounds.
        #[arg(long, default_value_t = 30)]
        iterations: usize,
    },
    /// Deployment proxy overhead vs direct (wrk against `kiln deploy proxy`), and rollback decision latency.
    Proxy {
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Keep-alive connections, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
        connections: Vec<usize>,
        /// KiB a working backend hashes per request, comma-separated (one backend each).
        #[arg(long, value_delimiter = ',', default_values_t = [64, 256])]
        work_kib: Vec<usize>,
        /// Runs per side.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Canary rollbacks timed.
        #[arg(long, default_value_t = 5)]
        decisions: usize,
        /// The kiln binary (default: `kiln` next to this executable, built
        /// with `cargo build --release -p kiln` if missing).
        #[arg(long)]
        kiln: Option<PathBuf>,
    },
    /// The proxy benchmark's backend process (started by `proxy`).
    #[command(hide = true)]
    ProxyBackend {
        #[arg(long, default_value_t = 0)]
        work_kib: usize,
    },
    /// A one-`true`-step container job under `kiln run` vs `docker run --rm IMAGE true`.
    Docker {
        /// Image for both (the default is built from /bin/busybox if missing).
        #[arg(long, default_value = kiln_bench::docker::DEFAULT_IMAGE)]
        image: String,
        /// Measured runs per runner.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// The kiln binary (default: `kiln` next to this executable).
        #[arg(long)]
        kiln: Option<PathBuf>,
    },
    /// Plugin steps: first compile vs cached load, cached step start
    /// (median, p99), concurrent steps (throughput, RSS per waiting step).
    Wasm {
        /// Sequential cached no-op steps to time.
        #[arg(long, default_value_t = 2000)]
        steps: usize,
        /// Plugin steps at once in the concurrency rounds.
        #[arg(long, default_value_t = 500)]
        concurrent: usize,
    },
    /// Run the same DAG of no-op jobs with `kiln run` and `make -j`, side by side.
    Scheduler {
        /// Jobs in the DAG.
        #[arg(long, default_value_t = 2000)]
        jobs: usize,
        /// Needs per job.
        #[arg(long, default_value_t = 4)]
        needs: usize,
        /// Concurrent jobs for both runners (`make -jN`, `kiln run --jobs N`).
        #[arg(long, default_value_t = 2)]
        parallel: usize,
        /// Measured rounds per runner.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Generator seed.
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// The kiln binary (default: `kiln` next to this executable, built
        /// with `cargo build --release -p kiln` if missing).
        #[arg(long)]
        kiln: Option<PathBuf>,
        /// Keep the generated kiln.yml, Makefile and .kiln/ for inspection.
        #[arg(long)]
        keep: bool,
    },
    /// Store a file in page cache in the blob store, against `sha256sum`; then again (dedup).
    Ingest {
        /// Input size in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// Alternating rounds of each.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Work directory [default: a new one in the system temp dir]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    if cfg!(debug_assertions) {
        eprintln!("warning: kiln-bench is a debug build; use `cargo run --release -p kiln-bench`");
    }
    let result = match Cli::parse().which {
        Which::Plan {
            jobs,
            needs,
            iterations,
            seed,
        } => PlanBench {
            sizes: jobs.map_or_else(|| vec![1_000, 10_000], |n| vec![n]),
            needs,
            iterations,
            seed,
        }
        .run()
        .map(drop),
        Which::Resolve {
            mib,
            references,
            iterations,
        } => kiln_bench::resolve::ResolveBench {
            sizes: mib.map_or_else(|| vec![1 << 20, 16 << 20], |m| vec![m << 20]),
            references,
            iterations,
        }
        .run(),
        Which::Proxy {
            seconds,
            connections,
            work_kib,
            rounds,
            decisions,
            kiln,
        } => kiln.map_or_else(locate_kiln, Ok).and_then(|kiln| {
            kiln_bench::proxy::ProxyBench {
                kiln,
                seconds: seconds.max(1),
                rounds: rounds.max(1),
                connections: connections.into_iter().map(|c| c.max(1)).collect(),
                work_kib,
                decisions: decisions.max(1),
            }
            .run()
        }),
        Which::ProxyBackend { work_kib } => kiln_bench::proxy::backend_process(work_kib),
        Which::Docker { image, runs, kiln } => match kiln.map_or_else(locate_kiln, Ok) {
            Ok(kiln) => kiln_bench::docker::DockerBench {
                image,
                runs: runs.max(1),
                kiln,
                dir: std::env::temp_dir().join(format!("kiln-bench-docker-{}", std::process::id())),
            }
            .run()
            .map(drop),
            Err(e) => Err(e),
        },
        Which::Wasm { steps, concurrent } => {
            return match (kiln_bench::wasm::WasmBench { steps, concurrent }).run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("kiln-bench: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Which::Scheduler {
            jobs,
            needs,
            parallel,
            rounds,
            seed,
            kiln,
            keep,
        } => match kiln.map_or_else(locate_kiln, Ok) {
            Ok(kiln) => {
                let dir = std::env::temp_dir().join(format!("kiln-bench-{}", std::process::id()));
                if keep {
                    println!("workload kept in {}", dir.display());
                }
                SchedulerBench {
                    jobs,
                    needs,
                    parallel,
                    rounds,
                    seed,
                    kiln,
                    dir,
                    keep,
                }
                .run()
                .map(drop)
            }
            Err(e) => Err(e),
        },
        Which::Ingest { mib, rounds, dir } => kiln_bench::ingest::IngestBench {
            mib,
            rounds,
            dir: dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("kiln-bench-ingest-{}", std::process::id()))
            }),
        }
        .run()
        .map(drop),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiln-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
