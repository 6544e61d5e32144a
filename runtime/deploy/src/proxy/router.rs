//! The routing table and how one request picks a backend.
//!
//! The table is swapped whole behind an `RwLock<Arc<…>>`: a request is
//! routed by exactly one table, so a weight change is atomic — no request
//! ever sees half of one table and half of another. Each swap bumps a
//! generation counter, so a connection keeps its table until it changes
//! instead of taking the lock per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::stats::VersionStats;
use crate::contract::TrafficStats;
use crate::spec::Sticky;

/// What the controller tells the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingTable {
    /// The serving version.
    pub stable: Option<String>,
    /// The version being rolled out.
    pub candidate: Option<String>,
    /// Percent of requests for the candidate (0–100).
    pub weight: u8,
    /// Instances that may receive traffic (healthy ones only).
    pub backends: Vec<Backend>,
    /// Sticky sessions.
    pub sticky: Option<Sticky>,
}

/// One instance in the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    /// Instance name.
    pub instance: String,
    /// Its version.
    pub version: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// A backend with what requests need at run time. It lives as long as the
/// instance stays in the table unchanged; connections to it are keyed by
/// this value's identity, so a port reused later by another instance never
/// meets a connection opened to the old one.
pub(crate) struct LiveBackend {
    pub backend: Backend,
    pub in_flight: Arc<AtomicUsize>,
    pub stats: Arc<VersionStats>,
}

/// A table ready for routing.
pub(crate) struct Live {
    pub table: RoutingTable,
    stable: Vec<Arc<LiveBackend>>,
    candidate: Vec<Arc<LiveBackend>>,
}

impl Live {
    /// Whether `backend` is one of this table's.
    pub fn routes_to(&self, backend: &Arc<LiveBackend>) -> bool {
        self.stable
            .iter()
            .chain(&self.candidate)
            .any(|b| Arc::ptr_eq(b, backend))
    }
}

/// The proxy's state: the live table, clients, in-flight counts, stats.
pub struct Router {
    live: RwLock<Arc<Live>>,
    /// Bumped after every swap of `live`.
    generation: AtomicU64,
    /// Woken after every swap (the pools' sweepers wait on it).
    changed: tokio::sync::Notify,
    stats: Mutex<HashMap<String, Arc<VersionStats>>>,
    in_flight: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    counter: AtomicU64,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// A router with an empty table (every request gets a 503).
    pub fn new() -> Self {
        Self {
            live: RwLock::new(Arc::new(Live {
                table: RoutingTable::default(),
                stable: Vec::new(),
                candidate: Vec::new(),
            })),
            generation: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            stats: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
        }
    }

    /// Replaces the table atomically, keeping the clients and counters of
    /// instances that stay.
    pub fn set_table(&self, table: RoutingTable) {
        let old = self.live();
        let mut kept: HashMap<&str, &Arc<LiveBackend>> = HashMap::new();
        for b in old.stable.iter().chain(&old.candidate) {
            kept.insert(&b.backend.instance, b);
        }
        let mut stats = self.stats.lock().expect("not poisoned");
        let mut in_flight = self.in_flight.lock().expect("not poisoned");
        let mut stable = Vec::new();
        let mut candidate = Vec::new();
        for backend in &table.backends {
            let live = match kept.get(backend.instance.as_str()) {
                Some(b) if b.backend == *backend => Arc::clone(b),
                _ => Arc::new(LiveBackend {
                    backend: backend.clone(),
                    in_flight: in_flight
                        .entry(backend.instance.clone())
                        .or_default()
                        .clone(),
                    stats: stats
                        .entry(backend.version.clone())
                        .or_insert_with(|| Arc::new(VersionStats::new(&backend.version)))
                        .clone(),
                }),
            };
            if table.candidate.as_deref() == Some(backend.version.as_str()) {
                candidate.push(live);
            } else {
                stable.push(live);
            }
        }
        drop((stats, in_flight));
        *self.live.write().expect("not poisoned") = Arc::new(Live {
            table,
            stable,
            candidate,
        });
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// The table now in force.
    pub fn table(&self) -> RoutingTable {
        self.live().table.clone()
    }

    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.read().expect("not poisoned").clone()
    }

    /// Changes with every [`Router::set_table`]; read it before
    /// [`Router::live`], so the table is at least as new as the number.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Resolves at the next [`Router::set_table`] after it was called.
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Traffic per version since the last [`Router::reset`].
    pub fn stats(&self) -> Vec<TrafficStats> {
        let stats = self.stats.lock().expect("not poisoned");
        let mut out: Vec<TrafficStats> = stats.values().map(|s| s.snapshot()).collect();
        out.sort_by(|a, b| a.version.cmp(&b.version));
        out
    }

    /// Zeroes every version's counters.
    pub fn reset(&self) {
        for s in self.stats.lock().expect("not poisoned").values() {
            s.reset();
        }
    }

    /// Requests in flight to `instance` (0 for unknown instances).
    pub fn in_flight(&self, instance: &str) -> usize {
        self.in_flight
            .lock()
            .expect("not poisoned")
            .get(instance)
            .map_or(0, |n| n.load(Ordering::SeqCst))
    }

    /// Picks the backend for one request. `key` is the sticky-session key,
    /// if the request has one.
    pub(crate) fn pick(&self, live: &Live, key: Option<&str>) -> Option<Arc<LiveBackend>> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Multiplying by 37 (coprime with 100) interleaves the candidate's
        // share through every 100 requests instead of sending it in a burst.
        let slot = match key {
            Some(k) => fnv(k) % 100,
            None => (n.wrapping_mul(37)) % 100,
        };
        let to_candidate = slot < u64::from(live.table.weight.min(100));
        let (first, second) = if to_candidate {
            (&live.candidate, &live.stable)
        } else {
            (&live.stable, &live.candidate)
        };
        // A version with no routable instance cannot take its share; the
        // other one does, rather than failing the request.
        let pool = if first.is_empty() { second } else { first };
        if pool.is_empty() {
            return None;
        }
        let index = match key {
            Some(k) => (fnv(k) / 100) as usize % pool.len(),
            None => (n as usize) % pool.len(),
        };
        Some(pool[index].clone())
    }
}

/// A client connection's copy of the table, taken from the router again
/// only when its generation has moved.
pub(crate) struct TableView {
    generation: u64,
    live: Arc<Live>,
}

impl TableView {
    pub fn new(router: &Router) -> Self {
        let generation = router.generation();
        Self {
            generation,
            live: router.live(),
        }
    }

    /// The newest table and its generation.
    pub fn current(&mut self, router: &Router) -> (u64, Arc<Live>) {
        let now = router.generation();
        if now != self.generation {
            self.live = router.live();
            self.generation = now;
        }
        (self.generation, self.live.clone())
    }
}

/// FNV-1a: a stable hash, so a sticky key maps to the same slot in every
/// proxy process.
fn fnv(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
