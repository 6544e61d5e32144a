//! kiln's state under `.kiln/`: run records in SQLite (`kiln.db`).
#![warn(missing_docs)]
