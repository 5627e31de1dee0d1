//! Packet labels (docs/MODELS.md §5): per-capture attacker addresses with an
//! optional time window, from a CSV in the format of data/labels.csv, or
//! one class name for a whole input.

use std::path::Path;

use super::parse::{ip_to_addr, Addr, ParsedPacket};
use super::sample::{NameTable, PacketLabel};

pub const BENIGN: &str = "benign";

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {msg}")]
    Parse {
        file: String,
        line: usize,
        msg: String,
    },
}

/// One labelling rule: packets to or from `attackers` (inside the window,
/// if any) of the capture `file` are malicious, named `attack`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabelRule {
    /// Path relative to the data directory; matches inputs whose path ends
    /// with these components.
    pub file: String,
    pub attackers: Vec<Addr>,
    /// Inclusive time window in ns since the epoch.
    pub window: Option<(u64, u64)>,
    pub category: String,
    /// Attack name: the `attack` column, else the capture's file stem.
    pub attack: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelRules {
    pub rules: Vec<LabelRule>,
}

impl LabelRules {
    pub fn load(path: &Path) -> Result<Self, LabelError> {
        let text = std::fs::read_to_string(path).map_err(|e| LabelError::Io {
            file: path.display().to_string(),
            source: e,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Columns by header name: `file` and `attacker_ips` required;
    /// `category`, `attack`, `start`, `end` (seconds since the epoch,
    /// fractional allowed) optional. Fields hold no commas (as documented
    /// for data/labels.csv), so a plain split is exact.
    pub fn parse(text: &str, source: &str) -> Result<Self, LabelError> {
        let err = |line: usize, msg: String| LabelError::Parse {
            file: source.to_string(),
            line,
            msg,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Err(err(1, "empty labels file".into()));
        };
        let cols: Vec<&str> = header.split(',').map(|c| c.trim()).collect();
        let col = |name: &str| cols.iter().position(|c| *c == name);
        let file_c = col("file").ok_or_else(|| err(1, "no `file` column".into()))?;
        let ips_c = col("attacker_ips").ok_or_else(|| err(1, "no `attacker_ips` column".into()))?;
        let (cat_c, att_c, start_c, end_c) =
            (col("category"), col("attack"), col("start"), col("end"));
        let mut rules = Vec::new();
        for (i, line) in lines {
            let f: Vec<&str> = line.split(',').map(|c| c.trim()).collect();
            let get = |c: Option<usize>| c.and_then(|c| f.get(c)).copied().unwrap_or("");
            let file = get(Some(file_c));
            if file.is_empty() {
                return Err(err(i + 1, "empty `file` field".into()));
            }
            let mut attackers = Vec::new();
            for a in get(Some(ips_c)).split(';').filter(|a| !a.is_empty()) {
                let ip: std::net::IpAddr = a
                    .parse()
                    .map_err(|_| err(i + 1, format!("bad attacker address `{a}`")))?;
                attackers.push(ip_to_addr(ip));
            }
            let secs = |s: &str, what: &str| -> Result<Option<u64>, LabelError> {
                if s.is_empty() {
                    return Ok(None);
                }
                let v: f64 = s.parse().map_err(|_| {
                    err(
                        i + 1,
                        format!("bad {what} time `{s}` (seconds since the epoch)"),
                    )
                })?;
                Ok(Some((v * 1e9).max(0.0) as u64))
            };
            let start = secs(get(start_c), "start")?;
            let end = secs(get(end_c), "end")?;
            let window = match (start, end) {
                (None, None) => None,
                (s, e) => Some((s.unwrap_or(0), e.unwrap_or(u64::MAX))),
            };
            let stem = Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.to_string());
            let attack = match get(att_c) {
                "" => stem,
                a => a.to_string(),
            };
            rules.push(LabelRule {
                file: file.to_string(),
                attackers,
                window,
                category: get(cat_c).to_string(),
                attack,
            });
        }
        Ok(LabelRules { rules })
    }

    /// Rules whose `file` names this input (path-component suffix match,
    /// so `/data/attacks/scan/synscan.pcap` matches
    /// `attacks/scan/synscan.pcap`).
    pub fn for_input(&self, input: &str) -> Vec<&LabelRule> {
        let comps: Vec<&str> = input
            .split(['/', '\\'])
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        self.rules
            .iter()
            .filter(|r| {
                let rc: Vec<&str> = r
                    .file
                    .split(['/', '\\'])
                    .filter(|c| !c.is_empty())
                    .collect();
                !rc.is_empty()
                    && comps.len() >= rc.len()
                    && comps[comps.len() - rc.len()..] == rc[..]
            })
            .collect()
    }
}

/// A rule as the labeler applies it: attacker addresses, time window, attack name id.
type Rule = (Vec<Addr>, Option<(u64, u64)>, u16);

/// Labels the packets of one input.
#[derive(Clone, Debug)]
pub struct PacketLabeler {
    rules: Vec<Rule>,
    /// Name id for packets no rule marks.
    base_class: u16,
}

impl PacketLabeler {
    /// `class`: a whole-input class name (replaces "benign" as the name of
    /// packets no rule marks).
    pub fn new(rules: &[&LabelRule], class: Option<&str>, names: &mut NameTable) -> Self {
        let base_class = names.intern(class.unwrap_or(BENIGN));
        let rules = rules
            .iter()
            .filter(|r| !r.attackers.is_empty())
            .map(|r| (r.attackers.clone(), r.window, names.intern(&r.attack)))
            .collect();
        PacketLabeler { rules, base_class }
    }

    pub fn label(&self, pkt: &ParsedPacket) -> PacketLabel {
        if let Some(ip) = &pkt.ip {
            for (attackers, window, class) in &self.rules {
                if let Some((s, e)) = window {
                    if pkt.ts_ns < *s || pkt.ts_ns > *e {
                        continue;
                    }
                }
                if attackers.iter().any(|a| *a == ip.src || *a == ip.dst) {
                    return PacketLabel {
                        malicious: true,
                        class_id: *class,
                    };
                }
            }
        }
        PacketLabel {
            malicious: false,
            class_id: self.base_class,
        }
    }
}
