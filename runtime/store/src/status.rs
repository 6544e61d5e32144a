//! A run's overall state as stored.

use std::fmt;
use std::str::FromStr;

use crate::error::StoreError;

/// A run's status in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RunStatus {
    /// A live process is executing it (it holds the run's lock).
    Running,
    /// Every job succeeded or was skipped by its own `if:`.
    Success,
    /// Some job failed or timed out.
    Failed,
    /// The user (Ctrl-C, SIGTERM) or the pipeline timeout cancelled it.
    Cancelled,
    /// The process died without finishing the record (SIGKILL, crash).
    Interrupted,
}

impl RunStatus {
    /// The stored (and displayed) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "running" => Self::Running,
            "success" => Self::Success,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "interrupted" => Self::Interrupted,
            other => {
                return Err(StoreError::BadStatus {
                    value: other.to_owned(),
                });
            }
        })
    }
}
