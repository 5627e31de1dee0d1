//! Bounded group tables shared by the pair, flow and split tables.
//!
//! Eviction is a CLOCK-style second chance: every group sits once in a
//! FIFO with the push stamp it had when queued. To make room, the front is
//! popped; if the group was touched since (its stamp moved on), it is
//! queued again with the new stamp, otherwise it is the idle one and goes.
//! That costs O(1) amortised per new group and nothing per packet, where a
//! scan for the oldest would touch the whole table (hundreds of MB at the
//! cap) — the difference between 0.4 and several M packets/s on a flood.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
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
    order: VecDeque<(K, u64)>,
    pub max: usize,
    pub evicted: u64,
}

impl<K: Hash + Eq + Copy, V: Group> GroupTable<K, V> {
    pub fn new(max: usize) -> Self {
        GroupTable {
            map: FastMap::default(),
            order: VecDeque::new(),
            max: max.max(1),
            evicted: 0,
        }
    }

    /// Adds a new group (the caller made room first).
    pub fn insert(&mut self, k: K, v: V) -> &mut V {
        self.order.push_back((k, v.last_seen()));
        match self.map.entry(k) {
            Entry::Vacant(e) => e.insert(v),
            Entry::Occupied(e) => {
                let r = e.into_mut();
                *r = v;
                r
            }
        }
    }

    /// Evicts the idle group to make room for one more, if the table is full.
    pub fn make_room(&mut self) -> Option<(K, V)> {
        if self.map.len() < self.max {
            return None;
        }
        while let Some((k, stamp)) = self.order.pop_front() {
            let Some(v) = self.map.get(&k) else { continue };
            let seen = v.last_seen();
            if seen == stamp {
                self.evicted += 1;
                return self.map.remove_entry(&k);
            }
            self.order.push_back((k, seen));
        }
        None
    }

    /// Groups removed outside `make_room` leave stale queue entries;
    /// rebuild the queue before it outgrows the table.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 1024 {
            let mut v: Vec<(K, u64)> = self.map.iter().map(|(k, g)| (*k, g.last_seen())).collect();
            v.sort_unstable_by_key(|e| e.1);
            self.order = v.into();
        }
    }

    /// Removes the groups whose last packet is older than `now - idle`.
    pub fn take_idle(&mut self, now_ns: u64, idle_ns: u64) -> Vec<(K, V)> {
        let out: Vec<(K, V)> = self
            .map
            .extract_if(|_, v| v.last_ts().saturating_add(idle_ns) < now_ns)
            .collect();
        self.compact();
        out
    }

    pub fn take_all(&mut self) -> Vec<(K, V)> {
        self.order.clear();
        self.map.drain().collect()
    }
}
