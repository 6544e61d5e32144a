//! Deterministic archives and hostile extraction.
