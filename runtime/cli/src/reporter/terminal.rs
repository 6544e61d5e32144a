//! The human view of a run: job-prefixed live output in a stable colour per
//! job, a line per job start/finish, retries and skips with their reason,
//! and a summary table. On a terminal, a spinner per running job sits below
//! the output (indicatif); output lines are printed through it so the two
//! never garble each other.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_engine::{Event, JobResult, RunResult, StepResult};

use super::summary::{self, Row};
use crate::record::wire_name;
use crate::style::{self, Palette};
use crate::units;

/// Prints a run for people.
pub(crate) struct TerminalReporter {
    palette: Palette,
    live: Option<MultiProgress>,
    jobs: Vec<JobView>,
    /// Lines not yet written (without a live view): written together by
    /// [`TerminalReporter::flush`] after each burst of events, one write
    /// instead of one per line.
    pending: std::cell::RefCell<String>,
}

#[derive(Default)]
struct JobView {
    name: String,
    prefix: String,
    bar: Option<ProgressBar>,
    row: Option<Row>,
}

impl TerminalReporter {
    /// A reporter on stdout; live progress only if stdout is a terminal.
    pub(crate) fn new() -> Self {
        let stdout = std::io::stdout();
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let live = (stdout.is_terminal() && !dumb)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Self {
            palette: Palette::stdout(),
            live,
            jobs: Vec::new(),
            pending: Default::default(),
        }
    }

    /// Prints a line above the progress view (or just prints it).
    fn line(&self, text: &str) {
        match &self.live {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => {
                let mut pending = self.pending.borrow_mut();
                pending.push_str(text);
                pending.push('\n');
            }
        }
    }

    /// Writes the lines gathered since the last flush.
    pub(crate) fn flush(&self) {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return;
        }
        // Not print!: a closed pipe must not panic the run.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(pending.as_bytes()).and_then(|()| out.flush());
        pending.clear();
    }

    /// An out-of-band message (cancellation notices).
    pub(crate) fn notice(&self, text: &str) {
        self.line(&self.palette.paint(style::warn(), text));
    }

    /// Removes every spinner.
    pub(crate) fn close(&mut self) {
        for job in &mut self.jobs {
            if let Some(bar) = job.bar.take() {
                bar.finish_and_clear();
            }
        }
        if let Some(multi) = &self.live {
            let _ = multi.clear();
        }
        self.flush();
    }

    fn job(&mut self, index: usize) -> &mut JobView {
        if index >= self.jobs.len() {
            self.jobs.resize_with(index + 1, JobView::default);
        }
        &mut self.jobs[index]
    }

    fn prefix(&mut self, index: usize) -> String {
        self.job(index).prefix.clone()
    }

    /// Shows one event.
    pub(crate) fn report(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run,
                pipeline,
                jobs,
                ..
            } => {
                for info in jobs {
                    let palette = self.palette;
                    let view = self.job(info.id.0);
                    view.name = info.name.clone();
                    view.prefix =
                        palette.paint(palette.job_style(&info.name), &format!("[{}]", info.name));
                }
                let count = jobs.len();
                let text = format!(
                    "run {run} · {pipeline} · {count} {}",
                    if count == 1 { "job" } else { "jobs" }
                );
                self.line(&self.palette.paint(style::dim(), &text));
            }
            Event::JobStarted { job, attempt, .. } => {
                let prefix = self.prefix(job.0);
                let note = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                self.line(&format!("{prefix} ▶ started{note}"));
                self.start_spinner(job.0);
            }
            Event::StepStarted { job, name, .. } => {
                let prefix = self.prefix(job.0);
                self.line(&format!(
                    "{prefix} {}",
                    self.palette.paint(style::dim(), &format!("▸ {name}"))
                ));
                if let Some(bar) = &self.job(job.0).bar {
                    bar.set_message(name.clone());
                }
            }
            Event::Output { job, line, .. } => {
                let prefix = self.prefix(job.0);
                self.line(&format!("{prefix} {line}"));
            }
            Event::StepFinished {
                job,
                step,
                result,
                exit_code,
                duration,
            } => self.step_finished(job.0, *step, *result, *exit_code, *duration),
            Event::JobRetrying {
                job,
                attempt,
                delay,
                reason,
            } => {
                let prefix = self.prefix(job.0);
                let text = format!(
                    "↻ attempt {attempt} failed ({reason}); retrying in {}",
                    units::duration(*delay)
                );
                self.line(&format!(
                    "{prefix} {}",
                    self.palette.paint(style::warn(), &text)
                ));
                if let Some(bar) = &self.job(job.0).bar {
                    bar.set_message(format!("retrying in {}", units::duration(*delay)));
                }
            }
            Event::JobFinished {
                job,
                name,
                result,
                attempts,
                duration,
                reason,
                ..
            } => self.job_finished(
                job.0,
                name,
                *result,
                *attempts,
                *duration,
                reason.as_deref(),
            ),
            Event::RunFinished {
                run,
                result,
                duration,
            } => self.run_finished(*run, *result, *duration),
            Event::Transfer { job, transfer } => {
                let prefix = self.prefix(job.0);
                self.line(&format!(
                    "{prefix} {}",
                    self.palette.paint(style::dim(), &transfer_line(transfer))
                ));
            }
            _ => {}
        }
    }

    fn start_spinner(&mut self, index: usize) {
        let Some(multi) = self.live.clone() else {
            return;
        };
        let name = self.job(index).name.clone();
        let style = ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = multi.add(
            ProgressBar::new_spinner()
                .with_style(style)
                .with_prefix(name),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Some(old) = self.job(index).bar.replace(bar) {
            old.finish_and_clear();
        }
    }

    fn step_finished(
        &mut self,
        job: usize,
        step: usize,
        result: StepResult,
        exit_code: Option<i32>,
        duration: Duration,
    ) {
        let prefix = self.prefix(job);
        let (text, style) = match result {
            StepResult::Success => return,
            StepResult::Skipped => (format!("○ step {} skipped", step + 1), style::dim()),
            StepResult::FailedIgnored => {
                let exit = exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default();
                let text = format!(
                    "! step {} failed{exit} after {}; continuing (continue-on-error)",
                    step + 1,
                    units::duration(duration)
                );
                (text, style::warn())
            }
            _ => {
                let exit = exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default();
                let text = format!(
                    "✗ step {} {}{exit} after {}",
                    step + 1,
                    wire_name(&result).replace('_', " "),
                    units::duration(duration)
                );
                (text, style::bad())
            }
        };
        self.line(&format!("{prefix} {}", self.palette.paint(style, &text)));
    }

    fn job_finished(
        &mut self,
        index: usize,
        name: &str,
        result: JobResult,
        attempts: u32,
        duration: Duration,
        reason: Option<&str>,
    ) {
        let palette = self.palette;
        let view = self.job(index);
        if let Some(bar) = view.bar.take() {
            bar.finish_and_clear();
        }
        view.row = Some(Row {
            name: name.to_owned(),
            result: wire_name(&result),
            duration: (attempts > 0).then_some(duration),
            attempts,
            reason: reason.map(str::to_owned),
        });
        let took = units::duration(duration);
        let (mark, text, style) = match result {
            JobResult::Success => ("✓", format!("succeeded in {took}"), style::good()),
            JobResult::Failed => ("✗", format!("failed after {took}"), style::bad()),
            JobResult::TimedOut => ("✗", format!("timed out after {took}"), style::bad()),
            JobResult::Cancelled => ("⊘", "cancelled".to_owned(), style::warn()),
            JobResult::Skipped => ("○", "skipped".to_owned(), style::dim()),
        };
        let reason = reason.map(|r| format!(": {r}")).unwrap_or_default();
        let line = format!(
            "{} {} {text}{reason}",
            palette.paint(style, mark),
            palette.paint(palette.job_style(name), name)
        );
        self.line(&line);
    }

    fn run_finished(&mut self, run: i64, result: RunResult, duration: Duration) {
        self.close();
        let rows: Vec<Row> = self.jobs.iter().filter_map(|j| j.row.clone()).collect();
        let mut lines = vec![String::new()];
        lines.extend(summary::table(&rows, self.palette));
        let (word, style) = match result {
            RunResult::Success => ("succeeded", style::good()),
            RunResult::Cancelled => ("was cancelled", style::warn()),
            _ => ("failed", style::bad()),
        };
        lines.push(String::new());
        lines.push(format!(
            "{} in {} · logs: kiln runs logs {run}",
            self.palette.paint(style, &format!("run {run} {word}")),
            units::duration(duration)
        ));
        for line in lines {
            self.line(&line);
        }
        self.flush();
    }
}

/// `↑ artifact app 1.2 MiB sha256:0a1b2c3d4e5f`, `⟲ cache deps-… restored (exact key) 3.0 KiB`.
pub(crate) fn transfer_line(t: &kiln_engine::artifacts::Transfer) -> String {
    use kiln_engine::artifacts::TransferAction as A;
    let size = kiln_store::artifacts::retention::human_size(t.bytes);
    let digest = t
        .digest
        .as_deref()
        .map(|d| format!(" {}", &d[..d.len().min(19)]))
        .unwrap_or_default();
    let detail = t
        .detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    match t.action {
        A::Upload => format!("↑ artifact {} {size}{digest}", t.name),
        A::Download => format!("↓ artifact {} {size}{digest}{detail}", t.name),
        A::CacheRestore => format!("⟲ cache {} restored{detail} {size}", t.name),
        A::CacheMiss => format!("⟲ cache {} missed{detail}", t.name),
        A::CacheSave => format!("⟲ cache {} saved {size}{detail}", t.name),
        A::CacheSkip => format!("⟲ cache {} not saved{detail}", t.name),
    }
}
