//! The `mem://` twin of a queue: every key's content in one structure, kept under the
//! queue's `jobs` key (all its keys share a hash tag, so one shard).

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;
use tokio::sync::watch;

/// How many wake-up tokens the wake list keeps.
const WAKE_TOKENS: u64 = 1_000;

/// The `mem://` twin of a queue (kept under its `jobs` key).
pub(crate) struct State {
    pub(super) ready: VecDeque<String>,
    /// (due, id), and each delayed id's due time.
    pub(super) delayed: BTreeSet<(u64, String)>,
    pub(super) due: HashMap<String, u64>,
    /// (lease expiry, id), and each claimed id's expiry.
    pub(super) leases: BTreeSet<(u64, String)>,
    pub(super) expiry: HashMap<String, u64>,
    pub(super) jobs: HashMap<String, Job>,
    pub(super) dead: VecDeque<Bytes>,
    pub(super) wake_tokens: u64,
    pub(super) woken: watch::Sender<()>,
}

impl Default for State {
    fn default() -> Self {
        State {
            ready: VecDeque::new(),
            delayed: BTreeSet::new(),
            due: HashMap::new(),
            leases: BTreeSet::new(),
            expiry: HashMap::new(),
            jobs: HashMap::new(),
            dead: VecDeque::new(),
            wake_tokens: 0,
            woken: watch::Sender::new(()),
        }
    }
}

/// A job as the twin keeps it.
pub(super) struct Job {
    pub(super) payload: Bytes,
    pub(super) attempts: u64,
    /// The worker holding its lease.
    pub(super) owner: Option<String>,
}

impl State {
    /// `wake_one` of `_keys.lua`.
    pub(super) fn wake_one(&mut self) {
        self.wake_tokens = (self.wake_tokens + 1).min(WAKE_TOKENS);
        self.woken.send_modify(|()| {});
    }

    /// `ZREM leases id`.
    pub(super) fn unlease(&mut self, id: &str) {
        if let Some(at) = self.expiry.remove(id) {
            self.leases.remove(&(at, id.to_owned()));
        }
    }

    /// `ZADD delayed at id`.
    pub(super) fn delay(&mut self, id: &str, at: u64) {
        if let Some(old) = self.due.insert(id.to_owned(), at) {
            self.delayed.remove(&(old, id.to_owned()));
        }
        self.delayed.insert((at, id.to_owned()));
    }

    /// `bury` of `_keys.lua`.
    pub(super) fn bury(&mut self, id: &str, why: &str, cap: u64, now: u64) {
        self.unlease(id);
        let Some(job) = self.jobs.remove(id) else {
            return;
        };
        let record = serde_json::json!({
            "id": id,
            "d": String::from_utf8_lossy(&job.payload),
            "attempts": job.attempts,
            "error": why,
            "at": now,
        });
        self.dead.push_back(Bytes::from(record.to_string()));
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        while self.dead.len() > cap {
            self.dead.pop_front();
        }
    }

    /// Whether `owner` holds the lease of `id`.
    pub(super) fn held_by(&self, id: &str, owner: &str) -> bool {
        self.jobs
            .get(id)
            .is_some_and(|job| job.owner.as_deref() == Some(owner))
    }
}

/// The system clock in milliseconds since the Unix epoch (the twins' `TIME`).
pub(super) fn now_ms() -> u64 {
    crate::util::whole_millis(crate::util::window::now())
}
