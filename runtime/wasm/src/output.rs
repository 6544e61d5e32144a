//! Bounded stdout/stderr: guest output goes straight into the engine's
//! output channel (which splits lines and masks secrets); past the limit the
//! rest is discarded after one marker line, so a flood never grows the
//! runner's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use kiln_engine::{OutputSender, Stream};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// One guest output stream with its byte budget.
#[derive(Clone)]
pub(crate) struct Pipe {
    inner: Arc<PipeState>,
}

struct PipeState {
    stream: Stream,
    sender: OutputSender,
    limit: usize,
    written: AtomicUsize,
    truncated: AtomicBool,
}

impl Pipe {
    pub(crate) fn new(stream: Stream, sender: OutputSender, limit: usize) -> Self {
        Self {
            inner: Arc::new(PipeState {
                stream,
                sender,
                limit,
                written: AtomicUsize::new(0),
                truncated: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `bytes` within the budget; returns whether all of it fitted.
    pub(crate) fn send(&self, bytes: &[u8]) -> bool {
        let s = &self.inner;
        if s.truncated.load(Ordering::Relaxed) {
            return false;
        }
        let before = s.written.fetch_add(bytes.len(), Ordering::Relaxed);
        let room = s.limit.saturating_sub(before);
        if bytes.len() <= room {
            // A closed receiver means the step is over; dropping is right.
            let _ = s.sender.send((s.stream, bytes.to_vec()));
            return true;
        }
        if !s.truncated.swap(true, Ordering::Relaxed) {
            let mut chunk = bytes[..room].to_vec();
            chunk.extend_from_slice(
                format!(
                    "\n[kiln: {} truncated: the plugin wrote more than {} bytes; the rest is discarded]\n",
                    self.name(),
                    s.limit
                )
                .as_bytes(),
            );
            let _ = s.sender.send((s.stream, chunk));
        }
        false
    }

    /// Whether the budget ran out.
    pub(crate) fn truncated(&self) -> bool {
        self.inner.truncated.load(Ordering::Relaxed)
    }

    /// `stdout` or `stderr`.
    pub(crate) fn name(&self) -> &'static str {
        match self.inner.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// The byte budget.
    pub(crate) fn limit(&self) -> usize {
        self.inner.limit
    }
}

/// A guest's stdout and stderr kept in memory, for calls that have no
/// step log of their own (health checks, strategies): `limit` bytes of
/// each, then the truncation marker.
pub(crate) struct Captured {
    pub stdout: Pipe,
    pub stderr: Pipe,
    written: tokio::sync::mpsc::UnboundedReceiver<(Stream, Vec<u8>)>,
}

impl Captured {
    pub(crate) fn new(limit: usize) -> Self {
        let (sender, written) = tokio::sync::mpsc::unbounded_channel();
        Self {
            stdout: Pipe::new(Stream::Stdout, sender.clone(), limit),
            stderr: Pipe::new(Stream::Stderr, sender, limit),
            written,
        }
    }

    /// Everything written so far, in the order written.
    pub(crate) fn take(&mut self) -> String {
        let mut bytes = Vec::new();
        while let Ok((_, chunk)) = self.written.try_recv() {
            bytes.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl IsTerminal for Pipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Pipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Pipe {
    async fn ready(&mut self) {}
}

impl OutputStream for Pipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        // Past the limit the guest keeps running; its writes go nowhere.
        self.send(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Pipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.send(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_limit_is_cut_once_with_a_marker() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let pipe = Pipe::new(Stream::Stdout, tx, 10);
        assert!(pipe.send(b"12345"));
        assert!(!pipe.send(b"6789abcdef"));
        assert!(!pipe.send(b"more"));
        assert!(pipe.truncated());
        let chunks: Vec<Vec<u8>> =
            std::iter::from_fn(|| rx.try_recv().ok().map(|(_, b)| b)).collect();
        assert_eq!(
            chunks,
            [
                b"12345".to_vec(),
                b"6789a\n[kiln: stdout truncated: the plugin wrote more than 10 bytes; the rest is discarded]\n".to_vec(),
            ]
        );
    }
}
