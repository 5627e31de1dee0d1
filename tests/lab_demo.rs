//! assets/demo (made by lab/run.sh, see assets/demo/NOTE.md): its labels
//! match its captures. Every labelled attacker address appears in the test
//! capture, every attack window holds packets to or from its attacker, no
//! attacker packet falls outside its windows (so the windowed labels are
//! exact), the benign training capture holds no attacker address, and the
//! set stays under 5 MB.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use gpu_nids::ingest::labels::{LabelRule, LabelRules, PacketLabeler};
use gpu_nids::ingest::parse::{addr_to_ip, Addr};
use gpu_nids::ingest::sample::NameTable;
use gpu_nids::ingest::{CaptureReader, InputSource, LinkType, ParsedPacket};

const TRAIN: &str = "train-benign.pcap";
const TEST: &str = "test-attacks.pcap";

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo")
}

/// (timestamp ns, source, destination) of every IP packet, and the number
/// of frames.
fn ip_packets(path: &Path) -> (Vec<(u64, Addr, Addr)>, u64) {
    let mut r = CaptureReader::open(&InputSource::File(path.to_path_buf()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut frames = 0;
    while let Some(f) = r.next_frame().unwrap() {
        frames += 1;
        assert_eq!(f.link, LinkType::Ethernet, "{}: link type", path.display());
        let p = ParsedPacket::parse(&f);
        if let Some(ip) = p.ip {
            out.push((p.ts_ns, ip.src, ip.dst));
        }
    }
    (out, frames)
}

fn rules() -> LabelRules {
    LabelRules::load(&demo_dir().join("labels.csv")).expect("assets/demo/labels.csv parses")
}

fn attack_rules(rules: &LabelRules) -> Vec<&LabelRule> {
    rules
        .for_input(TEST)
        .into_iter()
        .filter(|r| !r.attackers.is_empty())
        .collect()
}

#[test]
fn demo_set_is_small_and_complete() {
    let dir = demo_dir();
    let mut total = 0;
    for f in [TRAIN, TEST, "labels.csv", "NOTE.md"] {
        let len = std::fs::metadata(dir.join(f))
            .unwrap_or_else(|e| panic!("assets/demo/{f}: {e}"))
            .len();
        total += len;
    }
    assert!(total < 5_000_000, "assets/demo is {total} bytes, over 5 MB");
    let header = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    let header = header.lines().next().unwrap();
    assert!(
        header.starts_with("file,attacker_ips,victim_ips,category,source_repo,source_path,notes"),
        "labels.csv keeps the shared column order: {header}"
    );
    assert!(
        header.ends_with(",start,end"),
        "labels.csv has the window columns: {header}"
    );
}

#[test]
fn demo_labels_match_captures() {
    let rules = rules();
    let attacks = attack_rules(&rules);
    assert!(
        attacks.len() >= 6,
        "expected the lab's attack windows, got {}",
        attacks.len()
    );
    let attacker_set: BTreeSet<Addr> = attacks.iter().flat_map(|r| r.attackers.clone()).collect();

    // Every attack row has a window, attackers are not shared between
    // rows, and the training capture is labelled benign.
    let mut owner: HashMap<Addr, &str> = HashMap::new();
    for r in &attacks {
        let (s, e) = r
            .window
            .unwrap_or_else(|| panic!("{}: no time window", r.attack));
        assert!(s < e, "{}: empty window", r.attack);
        for a in &r.attackers {
            if let Some(prev) = owner.insert(*a, &r.attack) {
                panic!("{} shared by {prev} and {}", addr_to_ip(a), r.attack);
            }
        }
    }
    let train_rules = rules.for_input(TRAIN);
    assert!(!train_rules.is_empty(), "labels.csv lists {TRAIN}");
    assert!(train_rules
        .iter()
        .all(|r| r.attackers.is_empty() && r.category == "benign"));

    // Test capture: per-window counts, attackers seen, nothing outside.
    let (pkts, _) = ip_packets(&demo_dir().join(TEST));
    let mut in_window: BTreeMap<&str, u64> = BTreeMap::new();
    let mut seen: BTreeSet<Addr> = BTreeSet::new();
    let mut outside = 0u64;
    let mut benign = 0u64;
    for &(ts, src, dst) in &pkts {
        for a in [src, dst] {
            if attacker_set.contains(&a) {
                seen.insert(a);
            }
        }
        let hit: Vec<&&LabelRule> = attacks
            .iter()
            .filter(|r| r.attackers.iter().any(|a| *a == src || *a == dst))
            .collect();
        if hit.is_empty() {
            benign += 1;
            continue;
        }
        let mut inside = false;
        for r in hit {
            let (s, e) = r.window.unwrap();
            if ts >= s && ts <= e {
                *in_window.entry(&r.attack).or_default() += 1;
                inside = true;
            }
        }
        if !inside {
            outside += 1;
        }
    }
    for a in &attacker_set {
        assert!(
            seen.contains(a),
            "attacker {} never appears in {TEST}",
            addr_to_ip(a)
        );
    }
    for r in &attacks {
        let n = in_window.get(r.attack.as_str()).copied().unwrap_or(0);
        assert!(
            n >= 20,
            "window {} has {n} packets to or from its attacker",
            r.attack
        );
    }
    assert_eq!(outside, 0, "attacker packets outside every window");
    assert!(
        benign >= 5_000,
        "test capture has only {benign} benign IP packets"
    );

    // The crate's own labeller agrees: malicious = attacker packets.
    let mut names = NameTable::new();
    let labeler = PacketLabeler::new(&rules.for_input(TEST), None, &mut names);
    let mut r = CaptureReader::open(&InputSource::File(demo_dir().join(TEST))).unwrap();
    let mut malicious = 0u64;
    while let Some(f) = r.next_frame().unwrap() {
        if labeler.label(&ParsedPacket::parse(&f)).malicious {
            malicious += 1;
        }
    }
    assert_eq!(malicious, in_window.values().sum::<u64>());
}

#[test]
fn demo_train_capture_is_benign_and_large_enough() {
    let rules = rules();
    let attacker_set: BTreeSet<Addr> = attack_rules(&rules)
        .iter()
        .flat_map(|r| r.attackers.clone())
        .collect();
    let (pkts, frames) = ip_packets(&demo_dir().join(TRAIN));
    assert!(frames >= pkts.len() as u64);
    let mut pairs: HashMap<(Addr, Addr), u64> = HashMap::new();
    for &(_, src, dst) in &pkts {
        assert!(
            !attacker_set.contains(&src) && !attacker_set.contains(&dst),
            "attacker address in {TRAIN}: {} -> {}",
            addr_to_ip(&src),
            addr_to_ip(&dst)
        );
        *pairs.entry((src, dst)).or_default() += 1;
    }
    // Enough benign images for the pair-image model: several thousand
    // packets over at least six directional pairs with a full window.
    let full = pairs.values().filter(|&&n| n >= 64).count();
    assert!(
        pkts.len() >= 5_000,
        "{TRAIN}: only {} IP packets",
        pkts.len()
    );
    assert!(full >= 6, "{TRAIN}: only {full} pairs with 64 packets");
}
