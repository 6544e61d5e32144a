//! A 200 MiB round trip streams through bounded memory: measured as the
//! peak RSS (VmHWM) of a child process doing only that.

use std::io::{self, Read};
use std::process::Command;

use kiln_store::cas::BlobStore;

const SIZE: u64 = 200 * 1024 * 1024;
/// The acceptance budget for a runner doing a 200 MiB upload/download.
const BUDGET_KIB: u64 = 64 * 1024;
const CHILD_ENV: &str = "KILN_STORE_MEMORY_CHILD";

/// Deterministic pseudo-random bytes (xorshift), generated on the fly.
struct Noise {
    state: u64,
    left: u64,
}

impl Noise {
    fn new(len: u64) -> Self {
        Self {
            state: 0x9e37_79b9_7f4a_7c15,
            left: len,
        }
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize / 8 * 8;
        let n = if n == 0 {
            self.left.min(buf.len() as u64) as usize
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "the child half of streaming_200_mib_round_trip_stays_within_64_mib"]
fn child_round_trip() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = BlobStore::open(root.as_ref()).unwrap();
    let stored = store.put_reader(Noise::new(SIZE)).unwrap();
    assert_eq!(stored.blob.size, SIZE);
    // Read back, comparing with the generator as we go.
    let mut blob = store.open_blob(&stored.blob.digest).unwrap();
    let mut expected = Noise::new(SIZE);
    let (mut got, mut want) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut total = 0u64;
    loop {
        let n = blob.read(&mut got).unwrap();
        if n == 0 {
            break;
        }
        expected.read_exact(&mut want[..n]).unwrap();
        assert!(got[..n] == want[..n], "content differs at offset {total}");
        total += n as u64;
    }
    assert_eq!(total, SIZE);
    println!("child-peak-rss-kib={}", peak_rss_kib());
}

#[test]
fn streaming_200_mib_round_trip_stays_within_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "cas_memory::child_round_trip",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.split("child-peak-rss-kib=").nth(1))
        .unwrap_or_else(|| panic!("no peak in child output:\n{stdout}"))
        .parse()
        .unwrap();
    eprintln!("200 MiB put + verified read: child peak RSS {} KiB", peak);
    assert!(
        peak < BUDGET_KIB,
        "peak RSS {peak} KiB over the {BUDGET_KIB} KiB budget"
    );
}
