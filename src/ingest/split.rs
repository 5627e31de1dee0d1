//! The evaluation split of docs/MODELS.md §5: per capture, t_split is the time
//! of the packet at `frac` (by count, in time order); a bidirectional flow
//! belongs to training if its first packet comes before t_split, else to
//! test, and each side's samples are built from its own packets only.

use super::flow::FlowKey;
use super::parse::ParsedPacket;
use super::reader::{CaptureReader, InputSource, ReadError};
use super::table::{Group, GroupTable};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Train,
    Test,
}

/// Index of the packet "at frac" among `n` packets sorted by time.
pub fn split_index(n: usize, frac: f64) -> usize {
    ((n as f64 * frac).floor() as usize).min(n.saturating_sub(1))
}

/// Time of the packet at `frac` of `timestamps` by count in time order.
pub fn split_time_of(mut timestamps: Vec<u64>, frac: f64) -> Option<u64> {
    if timestamps.is_empty() {
        return None;
    }
    let i = split_index(timestamps.len(), frac);
    Some(*timestamps.select_nth_unstable(i).1)
}

/// First pass over a capture: its split time (`None` if it holds no
/// packets). Needs a re-readable input, so not stdin.
pub fn split_time(input: &InputSource, frac: f64) -> Result<Option<u64>, ReadError> {
    let mut r = CaptureReader::open(input)?;
    let mut ts = Vec::new();
    while let Some(f) = r.next_frame()? {
        ts.push(f.ts_ns);
    }
    Ok(split_time_of(ts, frac))
}

struct FirstSeen {
    train: bool,
    last_seen: u64,
    last_ts: u64,
}

impl Group for FirstSeen {
    fn last_seen(&self) -> u64 {
        self.last_seen
    }
    fn last_ts(&self) -> u64 {
        self.last_ts
    }
}

/// Decides each packet's side by its flow's first packet.
pub struct SplitFilter {
    t_split: u64,
    table: GroupTable<FlowKey, FirstSeen>,
    clock: u64,
}

impl SplitFilter {
    /// `max_flows` bounds memory like the builders' caps; a flow forgotten
    /// under that pressure is re-sided by its next packet.
    pub fn new(t_split: u64, max_flows: usize) -> Self {
        SplitFilter {
            t_split,
            table: GroupTable::new(max_flows),
            clock: 0,
        }
    }

    pub fn t_split(&self) -> u64 {
        self.t_split
    }

    pub fn side(&mut self, pkt: &ParsedPacket) -> Side {
        let Some(ip) = pkt.ip.as_ref() else {
            return if pkt.ts_ns < self.t_split {
                Side::Train
            } else {
                Side::Test
            };
        };
        self.clock += 1;
        let key = FlowKey::of(ip);
        let (t, clock) = (self.t_split, self.clock);
        let e = if let Some(e) = self.table.map.get_mut(&key) {
            e
        } else {
            self.table.make_room();
            self.table.insert(
                key,
                FirstSeen {
                    train: pkt.ts_ns < t,
                    last_seen: clock,
                    last_ts: pkt.ts_ns,
                },
            )
        };
        e.last_seen = clock;
        e.last_ts = pkt.ts_ns;
        if e.train {
            Side::Train
        } else {
            Side::Test
        }
    }
}
