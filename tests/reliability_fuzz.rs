//! A bounded run of the fuzz entry points (gpu_nids::util::fuzz) that the
//! cargo-fuzz targets in fuzz/ drive for hours: seeded mutations of the
//! real demo captures and of a real checkpoint, plus every input a fuzzer
//! ever crashed on (fuzz/regressions/TARGET/). Errors are fine; a panic
//! fails the test.

use std::path::Path;

use gpu_nids::util::fuzz;

/// Mutations per target: well under a few seconds in all on one core
/// (GPU_NIDS_FUZZ_ROUNDS raises it for a longer run on stable).
fn rounds() -> usize {
    std::env::var("GPU_NIDS_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to eight of: bit flip, interesting byte or length, chunk delete,
/// duplicate or truncate (what libFuzzer's default mutators do).
fn mutate(r: &mut Rng, d: &mut Vec<u8>) {
    for _ in 0..1 + r.below(8) {
        if d.is_empty() {
            d.push(r.next() as u8);
        }
        let i = r.below(d.len());
        match r.below(7) {
            0 => d[i] ^= 1 << r.below(8),
            1 => d[i] = [0u8, 0xff, 0x7f, 0x80, 1, 0x40][r.below(6)],
            2 => {
                let v: u32 = [
                    0,
                    1,
                    11,
                    12,
                    16,
                    96,
                    0xffff,
                    0x1_0000,
                    0x7fff_ffff,
                    u32::MAX,
                ][r.below(10)];
                let b = v.to_le_bytes();
                for (k, x) in b.iter().enumerate() {
                    if let Some(y) = d.get_mut(i + k) {
                        *y = *x;
                    }
                }
            }
            3 => {
                let n = r.below(64).min(d.len() - i);
                d.drain(i..i + n);
            }
            4 => {
                let n = r.below(64).min(d.len() - i);
                let c: Vec<u8> = d[i..i + n].to_vec();
                let at = r.below(d.len());
                d.splice(at..at, c);
            }
            5 => d.truncate(i),
            _ => d.insert(i, r.next() as u8),
        }
    }
}

fn run(name: &str, seeds: &[Vec<u8>], f: fn(&[u8])) {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    // GPU_NIDS_FUZZ_SEEDS=DIR writes the seeds as a cargo-fuzz corpus.
    if let Some(d) = std::env::var_os("GPU_NIDS_FUZZ_SEEDS") {
        let d = Path::new(&d).join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), s).unwrap();
        }
    }
    for s in seeds {
        f(s);
    }
    for _ in 0..rounds() {
        let mut d = seeds[r.below(seeds.len())].clone();
        mutate(&mut r, &mut d);
        f(&d);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(name);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            f(&std::fs::read(e.path()).unwrap());
        }
    }
}

/// The records of the first `n` packets of a demo capture (no file header).
fn demo_records(n: usize) -> Vec<u8> {
    let b =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/test-attacks.pcap"))
            .unwrap();
    let mut o = 24;
    for _ in 0..n {
        let incl = u32::from_le_bytes(b[o + 8..o + 12].try_into().unwrap()) as usize;
        o += 16 + incl;
    }
    b[24..o].to_vec()
}

/// The same packets as pcapng enhanced packet blocks on interface 0.
fn demo_blocks(n: usize) -> Vec<u8> {
    let recs = demo_records(n);
    let mut o = Vec::new();
    let mut i = 0;
    while i + 16 <= recs.len() {
        let incl = u32::from_le_bytes(recs[i + 8..i + 12].try_into().unwrap()) as usize;
        let mut b = Vec::new();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&recs[i..i + 8]);
        b.extend_from_slice(&recs[i + 8..i + 16]);
        b.extend_from_slice(&recs[i + 16..i + 16 + incl]);
        o.extend_from_slice(&fuzz::ng_block(6, &b));
        i += 16 + incl;
    }
    o
}

#[test]
fn reliability_fuzz_pcap() {
    let whole = fuzz::pcap_with_header(0x80, &demo_records(40));
    run("capture_reader", &[whole], fuzz::capture);
    let seeds: Vec<Vec<u8>> = [0x80u8, 0x01, 0x02, 0x0c]
        .iter()
        .map(|&sel| {
            let mut v = vec![sel];
            v.extend_from_slice(&demo_records(30));
            v
        })
        .collect();
    run("pcap", &seeds, fuzz::pcap);
}

#[test]
fn reliability_fuzz_pcapng() {
    let seeds: Vec<Vec<u8>> = [0x00u8, 0x81, 0x01]
        .iter()
        .map(|&sel| {
            let mut v = vec![sel];
            v.extend_from_slice(&demo_blocks(30));
            v
        })
        .collect();
    run("pcapng", &seeds, fuzz::pcapng);
}

#[test]
fn reliability_fuzz_builders() {
    let mut r = Rng(7);
    let seeds: Vec<Vec<u8>> = (0..4)
        .map(|_| (0..400).map(|_| r.next() as u8).collect())
        .collect();
    run("builders", &seeds, fuzz::builders);
}

#[test]
fn reliability_fuzz_checkpoint() {
    run("checkpoint", &[fuzz::checkpoint_seed()], fuzz::checkpoint);
}
