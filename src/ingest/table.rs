//! Bounded group tables shared by the pair and flow builders.
//!
//! When a table is full, the least recently seen sixteenth of its groups
//! is evicted in one batch: finding the oldest by a selection over all
//! entries costs O(table), so batching keeps it O(16) per insertion while
//! a flood of one-packet groups streams through in bounded memory.

use std::collections::HashMap;
use std::hash::Hash;

pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(crate) trait Group {
    /// Monotonic push counter of the group's latest packet.
    fn last_seen(&self) -> u64;
    /// Timestamp of the group's latest packet (for idle flushing).
    fn last_ts(&self) -> u64;
}

pub(crate) struct GroupTable<K, V> {
    pub map: FastMap<K, V>,
    pub max: usize,
    pub evicted: u64,
}

impl<K: Hash + Eq + Copy, V: Group> GroupTable<K, V> {
    pub fn new(max: usize) -> Self {
        GroupTable {
            map: FastMap::default(),
            max: max.max(1),
            evicted: 0,
        }
    }

    /// Makes room for one more group if the table is full.
    pub fn make_room(&mut self) -> Vec<(K, V)> {
        if self.map.len() < self.max {
            return Vec::new();
        }
        let k = (self.max / 16).max(1);
        let mut seen: Vec<u64> = self.map.values().map(|v| v.last_seen()).collect();
        let (_, t, _) = seen.select_nth_unstable(k - 1);
        let t = *t;
        let out: Vec<(K, V)> = self.map.extract_if(|_, v| v.last_seen() <= t).collect();
        self.evicted += out.len() as u64;
        out
    }

    /// Removes the groups whose last packet is older than `now - idle`.
    pub fn take_idle(&mut self, now_ns: u64, idle_ns: u64) -> Vec<(K, V)> {
        self.map
            .extract_if(|_, v| v.last_ts().saturating_add(idle_ns) < now_ns)
            .collect()
    }

    pub fn take_all(&mut self) -> Vec<(K, V)> {
        self.map.drain().collect()
    }
}
