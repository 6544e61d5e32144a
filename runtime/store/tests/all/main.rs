//! Integration tests of kiln-store's blob store and archives, in one binary
//! so the 2-core machine links once.

mod archive;
mod archive_hostile;
mod artifacts;
mod cas;
mod cas_disk_full;
