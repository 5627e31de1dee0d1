//! The EVE stats line: the run's counters under Suricata's names.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use super::{eve_timestamp, StatsEvent};
use crate::detect::counters::Counters;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A stats line in Suricata's counter names only (its schema allows no
/// others); what has no Suricata name is in the end-of-run summary.
/// `alerts`: every model's alerts so far.
pub fn stats_event(c: &Counters, alerts: u64, live: bool, started: Instant) -> StatsEvent {
    let l = |a: &AtomicU64| a.load(Relaxed);
    let mut stats = serde_json::json!({
        "uptime": started.elapsed().as_secs(),
        "decoder": {
            "pkts": l(&c.packets),
            "bytes": l(&c.bytes),
            "ipv4": l(&c.ipv4),
            "ipv6": l(&c.ipv6),
            "tcp": l(&c.tcp),
            "udp": l(&c.udp),
            "sctp": l(&c.sctp),
            "icmpv4": l(&c.icmpv4),
            "icmpv6": l(&c.icmpv6),
            "arp": l(&c.arp),
            "unknown_ethertype": l(&c.unknown_ethertype),
            "invalid": l(&c.invalid),
        },
        // Open pairs and flows, and those closed early to stay under the cap.
        "flow": {
            "active": l(&c.groups_open),
            "memcap": l(&c.groups_evicted),
        },
        "detect": { "alert": alerts },
    });
    // Kernel counters exist only for a live interface; Suricata writes
    // none when it reads a file.
    if live {
        stats["capture"] = serde_json::json!({
            "kernel_packets": l(&c.kernel_packets),
            "kernel_drops": l(&c.kernel_drops),
            "kernel_ifdrops": l(&c.kernel_ifdrops),
        });
    }
    StatsEvent {
        timestamp: eve_timestamp(now_ns()),
        event_type: "stats",
        stats,
    }
}
