//! Deterministic tar archives of directories (in progress).
