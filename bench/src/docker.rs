//! Container step overhead: a job of one `true` step in `IMAGE` under
//! `kiln run`, against `docker run --rm IMAGE true`, interleaved so both see
//! the same machine state.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::stats::{Summary, ms};

/// The image the container tests build; the bench builds it the same way.
pub const DEFAULT_IMAGE: &str = "kiln-test/busybox:1";

/// The benchmark's settings.
#[derive(Debug, Clone)]
pub struct DockerBench {
    /// Image for both runners.
    pub image: String,
    /// Measured runs per runner.
    pub runs: usize,
    /// The `kiln` binary.
    pub kiln: PathBuf,
    /// Work directory (pipeline and `.kiln/`), removed afterwards.
    pub dir: PathBuf,
}

/// What the bench measured.
#[derive(Debug, Clone, Copy)]
pub struct DockerFigures {
    /// `kiln run` wall time.
    pub kiln: Summary,
    /// `docker run --rm` wall time.
    pub docker: Summary,
}

impl DockerBench {
    /// Runs the benchmark and prints the table.
    pub fn run(&self) -> Result<DockerFigures, Error> {
        ensure_image(&self.image)?;
        std::fs::create_dir_all(&self.dir).map_err(Error::io("creating the work directory"))?;
        let pipeline = format!(
            "jobs:\n  one:\n    image: {}\n    steps:\n      - run: 'true'\n",
            self.image
        );
        std::fs::write(self.dir.join("kiln.yml"), pipeline)
            .map_err(Error::io("writing kiln.yml"))?;
        let mut kiln = Command::new(&self.kiln);
        kiln.args(["run", "--json"]).current_dir(&self.dir);
        let mut docker = Command::new("docker");
        docker.args(["run", "--rm", &self.image, "true"]);
        // Warm both paths (page cache, the daemon's image metadata).
        for _ in 0..2 {
            time(&mut kiln)?;
            time(&mut docker)?;
        }
        let (mut kiln_times, mut docker_times) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            kiln_times.push(time(&mut kiln)?);
            docker_times.push(time(&mut docker)?);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let figures = DockerFigures {
            kiln: Summary::of(&kiln_times).expect("runs > 0"),
            docker: Summary::of(&docker_times).expect("runs > 0"),
        };
        print(&figures, self);
        Ok(figures)
    }
}

fn print(f: &DockerFigures, bench: &DockerBench) {
    println!(
        "container step overhead: one `true` step in `{}`, {} runs each",
        bench.image, bench.runs
    );
    println!(
        "{:<28} {:>12} {:>12} {:>12}",
        "runner", "median", "min", "max"
    );
    for (name, s) in [
        ("kiln run (job, image:)", f.kiln),
        ("docker run --rm IMAGE true", f.docker),
    ] {
        println!(
            "{name:<28} {:>12} {:>12} {:>12}",
            ms(s.median),
            ms(s.min),
            ms(s.max)
        );
    }
    let ratio = f.kiln.median.as_secs_f64() / f.docker.median.as_secs_f64();
    let added = f.kiln.median.as_secs_f64() - f.docker.median.as_secs_f64();
    println!(
        "median ratio kiln/docker: {ratio:.3}× (goal ≤ 1.05×); kiln adds {:.1} ms",
        added * 1e3
    );
}

fn time(command: &mut Command) -> Result<Duration, Error> {
    let started = Instant::now();
    let out = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(Error::io(format!("running {command:?}")))?;
    let took = started.elapsed();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::CommandFailed {
            command: format!("{command:?}"),
            status: out.status,
            stderr_tail: stderr.lines().rev().take(10).collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(took)
}

/// Builds `FROM scratch` + Debian's static busybox as `image` unless the
/// engine has it (only for the default image; another must exist).
fn ensure_image(image: &str) -> Result<(), Error> {
    let present = Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(Error::io("running `docker image inspect`"))?;
    if present.success() {
        return Ok(());
    }
    let missing = || Error::Io {
        what: format!("image `{image}` is not present; build or load it first"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    let busybox = Path::new("/bin/busybox");
    if image != DEFAULT_IMAGE || !busybox.is_file() {
        return Err(missing());
    }
    let context = std::env::temp_dir().join(format!("kiln-bench-image-{}", std::process::id()));
    let bin = context.join("bin");
    std::fs::create_dir_all(&bin).map_err(Error::io("creating the image context"))?;
    std::fs::copy(busybox, bin.join("busybox")).map_err(Error::io("copying busybox"))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(Error::io("busybox --list"))?;
    for applet in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| *a != "busybox")
    {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY bin /bin\nENV PATH=/bin\n",
    )
    .map_err(Error::io("writing the Dockerfile"))?;
    let built = Command::new("docker")
        .args(["build", "-q", "-t", image])
        .arg(&context)
        .stdout(Stdio::null())
        .status()
        .map_err(Error::io("running `docker build`"))?;
    let _ = std::fs::remove_dir_all(&context);
    if built.success() {
        Ok(())
    } else {
        Err(missing())
    }
}
