//! Expression tests.
