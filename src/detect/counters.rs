//! Counters the detector's threads share, read for stats lines and the
//! end-of-run summary.

use std::sync::atomic::AtomicU64;

/// Counters shared by the threads, read for stats lines.
#[derive(Default, Debug)]
pub struct Counters {
    pub packets_read: AtomicU64,
    pub filtered_out: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub ipv4: AtomicU64,
    pub ipv6: AtomicU64,
    pub tcp: AtomicU64,
    pub udp: AtomicU64,
    pub sctp: AtomicU64,
    pub icmpv4: AtomicU64,
    pub icmpv6: AtomicU64,
    pub arp: AtomicU64,
    /// Frames of another ether type (skipped).
    pub unknown_ethertype: AtomicU64,
    /// Packets too short or malformed to decode, or whose processing
    /// panicked (skipped).
    pub invalid: AtomicU64,
    pub samples_built: AtomicU64,
    pub groups_open: AtomicU64,
    pub groups_evicted: AtomicU64,
    pub queue_packets: AtomicU64,
    pub queue_samples: AtomicU64,
    pub kernel_packets: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub kernel_ifdrops: AtomicU64,
}
