//! Entry points shared by the cargo-fuzz targets (fuzz/) and the bounded
//! mutation test (tests/reliability_fuzz.rs): each takes arbitrary bytes and
//! must return without panicking, whatever they hold.

use crate::checkpoint::Checkpoint;
use crate::ingest::{
    flow::FlowOptions, image::ImageOptions, CaptureReader, FlowBuilder, ImageBuilder, LinkType,
    PacketLabel, ParsedPacket,
};

/// Link types the pcap/pcapng headers are drawn from.
const LINKTYPES: [u32; 8] = [1, 113, 276, 101, 228, 229, 0, 108];

/// Any bytes as a whole capture file.
pub fn capture(data: &[u8]) {
    drain(CaptureReader::from_bytes("fuzz", data.to_vec()));
}

/// A valid classic-pcap file header (byte order, resolution and link type
/// chosen by the first byte) followed by the remaining bytes as records.
pub fn pcap(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    drain(CaptureReader::from_bytes(
        "fuzz",
        pcap_with_header(sel, body),
    ));
}

pub fn pcap_with_header(sel: u8, records: &[u8]) -> Vec<u8> {
    let big = sel & 1 != 0;
    let magic: u32 = if sel & 2 != 0 {
        0xa1b2_3c4d
    } else {
        0xa1b2_c3d4
    };
    let lt = LINKTYPES[(sel >> 2) as usize % LINKTYPES.len()];
    let snap: u32 = if sel & 0x80 != 0 { 96 } else { 65535 };
    let w32 = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut o = Vec::with_capacity(24 + records.len());
    o.extend_from_slice(&w32(magic));
    o.extend_from_slice(&w16(2));
    o.extend_from_slice(&w16(4));
    o.extend_from_slice(&[0; 8]);
    o.extend_from_slice(&w32(snap));
    o.extend_from_slice(&w32(lt));
    o.extend_from_slice(records);
    o
}

/// A little-endian pcapng section header and one or two interface
/// descriptions (chosen by the first byte), then the remaining bytes as
/// blocks.
pub fn pcapng(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    drain(CaptureReader::from_bytes(
        "fuzz",
        pcapng_with_header(sel, body),
    ));
}

pub fn pcapng_with_header(sel: u8, blocks: &[u8]) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut o = ng_block(0x0a0d_0d0a, &shb);
    for i in 0..1 + (sel & 1) as usize {
        let lt = LINKTYPES[(sel >> (1 + 3 * i)) as usize % LINKTYPES.len()] as u16;
        let mut b = Vec::new();
        b.extend_from_slice(&lt.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&65535u32.to_le_bytes());
        if sel & 0x80 != 0 {
            // if_tsresol: nanoseconds.
            b.extend_from_slice(&9u16.to_le_bytes());
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(&[9, 0, 0, 0]);
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        o.extend_from_slice(&ng_block(1, &b));
    }
    o.extend_from_slice(blocks);
    o
}

/// One little-endian pcapng block of type `t` around `body` (padded).
pub fn ng_block(t: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let mut o = Vec::with_capacity(len as usize);
    o.extend_from_slice(&t.to_le_bytes());
    o.extend_from_slice(&len.to_le_bytes());
    o.extend_from_slice(body);
    o.extend_from_slice(&[0; 3][..pad]);
    o.extend_from_slice(&len.to_le_bytes());
    o
}

/// Reads every frame and feeds it through the parser and both builders
/// (small group caps, so that eviction paths run too).
fn drain(r: Result<CaptureReader, crate::ingest::ReadError>) {
    let Ok(mut r) = r else { return };
    let mut b = Builders::new(0);
    while let Ok(Some(f)) = r.next_frame() {
        b.push(&ParsedPacket::parse(&f));
    }
    b.finish();
}

struct Builders {
    img: ImageBuilder,
    flow: FlowBuilder,
    out: Vec<crate::ingest::Sample>,
}

impl Builders {
    fn new(sel: u32) -> Self {
        let img = ImageOptions {
            undirected: sel & 1 != 0,
            min_packets: 1 + (sel >> 1) as usize % 64,
            mask_addresses: sel & 0x80 != 0,
            max_groups: 1 + (sel >> 8) as usize % 8,
        };
        let flow = FlowOptions {
            n: 1 + (sel >> 11) as usize % 8,
            l: 1 + (sel >> 14) as usize % 128,
            anonymise: sel & (1 << 21) != 0,
            max_groups: 1 + (sel >> 22) as usize % 8,
        };
        Builders {
            img: ImageBuilder::new(img, 0),
            flow: FlowBuilder::new(flow, 0),
            out: Vec::new(),
        }
    }
    fn push(&mut self, p: &ParsedPacket) {
        self.img.push(p, PacketLabel::default(), &mut self.out);
        self.flow.push(p, PacketLabel::default(), &mut self.out);
        self.out.clear();
    }
    fn flush_idle(&mut self, now: u64, idle: u64) {
        self.img.flush_idle(now, idle, &mut self.out);
        self.flow.flush_idle(now, idle, &mut self.out);
        self.out.clear();
    }
    fn finish(&mut self) {
        self.img.finish(&mut self.out);
        self.flow.finish(&mut self.out);
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = rest.split_at(n.min(rest.len()));
    *rest = b;
    a
}

/// The image and flow builders with options from the first four bytes, fed
/// packets described by the rest: per packet a control byte, then either a
/// synthesised IPv4/IPv6 header over a few addresses and ports (so that
/// groups collide, fill and get evicted) or raw frame bytes.
pub fn builders(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let mut b = Builders::new(u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
    let mut rest = &data[4..];
    let mut ts = 0u64;
    let mut number = 0u64;
    let mut frame = Vec::new();
    while let Some((&ctl, tail)) = rest.split_first() {
        rest = tail;
        let h = take(&mut rest, 4);
        let get = |i: usize| h.get(i).copied().unwrap_or(0);
        ts = ts.saturating_add(u64::from(get(0)) << (ctl & 0x1f));
        let plen = get(3) as usize % 64;
        let payload = take(&mut rest, plen);
        frame.clear();
        let link = match ctl >> 6 {
            0 => {
                frame.extend_from_slice(&ipv4(get(1) % 4, get(2) % 4, get(2) >> 2, payload));
                LinkType::Raw
            }
            1 => {
                frame.extend_from_slice(&[0; 12]);
                frame.extend_from_slice(&[0x86, 0xdd]);
                frame.extend_from_slice(&ipv6(get(1) % 4, get(2) % 4, get(2) >> 2, payload));
                LinkType::Ethernet
            }
            2 => {
                frame.extend_from_slice(payload);
                LinkType::Ethernet
            }
            _ => {
                b.flush_idle(ts, u64::from(get(1)) << 20);
                continue;
            }
        };
        number += 1;
        let f = crate::ingest::Frame {
            ts_ns: ts,
            link,
            data: &frame,
            number,
            orig_len: frame.len() as u32,
        };
        b.push(&ParsedPacket::parse(&f));
    }
    b.finish();
}

fn l4(proto_sel: u8, payload: &[u8]) -> (u8, Vec<u8>) {
    let sport = 1000 + u16::from(proto_sel & 3);
    let mut o = Vec::new();
    o.extend_from_slice(&sport.to_be_bytes());
    o.extend_from_slice(&80u16.to_be_bytes());
    match proto_sel >> 2 & 3 {
        0 => {
            // TCP, 20-byte header.
            o.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
            o.extend_from_slice(payload);
            (6, o)
        }
        1 => {
            o.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            o.extend_from_slice(&[0, 0]);
            o.extend_from_slice(payload);
            (17, o)
        }
        2 => (1, payload.to_vec()),
        _ => (proto_sel, payload.to_vec()),
    }
}

fn ipv4(src: u8, dst: u8, proto_sel: u8, payload: &[u8]) -> Vec<u8> {
    let (proto, body) = l4(proto_sel, payload);
    let total = (20 + body.len()) as u16;
    let mut o = vec![0x45, 0];
    o.extend_from_slice(&total.to_be_bytes());
    // Fragment offset from the selector: later fragments carry no ports.
    let frag: u16 = if proto_sel & 0x20 != 0 { 0x0010 } else { 0 };
    o.extend_from_slice(&[0, 1]);
    o.extend_from_slice(&frag.to_be_bytes());
    o.extend_from_slice(&[64, proto, 0, 0]);
    o.extend_from_slice(&[10, 0, 0, src]);
    o.extend_from_slice(&[10, 0, 0, dst]);
    o.extend_from_slice(&body);
    o
}

fn ipv6(src: u8, dst: u8, proto_sel: u8, payload: &[u8]) -> Vec<u8> {
    let (proto, body) = l4(proto_sel, payload);
    let mut o = vec![0x60, 0, 0, 0];
    o.extend_from_slice(&(body.len() as u16).to_be_bytes());
    o.extend_from_slice(&[proto, 64]);
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[15] = src;
    o.extend_from_slice(&a);
    a[15] = dst;
    o.extend_from_slice(&a);
    o.extend_from_slice(&body);
    o
}

/// Any bytes as a checkpoint file: parsed, then checked against the model
/// its metadata names (the same checks every loader runs before building).
pub fn checkpoint(data: &[u8]) {
    let mut r = std::io::Cursor::new(data);
    if let Ok(c) = Checkpoint::from_reader(&mut r, data.len() as u64, "fuzz") {
        let _ = crate::models::registry::validate(&c, "fuzz");
    }
    // The parser alone, without the size check in front of it.
    let _ = Checkpoint::from_bytes(data, "fuzz");
}

/// A small checkpoint whose metadata is what training writes (model `ae`,
/// sample options, training state, threshold) beside two tiny tensors:
/// a seed from which mutation reaches every metadata check.
pub fn checkpoint_seed() -> Vec<u8> {
    let mut c = Checkpoint::default();
    c.insert("enc.0.weight", &[2, 3], vec![0.5; 6]);
    c.insert("enc.0.bias", &[2], vec![0.0; 2]);
    c.meta.insert("model".into(), "ae".into());
    c.set_json("samples", &crate::models::FlowSpec::new(true));
    c.set_json(
        "train",
        &serde_json::json!({
            "options": crate::train::TrainOptions::baseline_default(),
            "epoch": 1,
            "step": 3,
            "history": [],
            "classes": ["benign"],
            "train_samples": 10,
            "val_samples": 2,
        }),
    );
    c.set_json(
        "threshold",
        &crate::eval::threshold::Threshold {
            value: 0.5,
            alert_fpr: 1e-3,
            ln_mean: 0.0,
            ln_std: 1.0,
            empirical: 0.5,
            n: 2,
        },
    );
    c.to_bytes().expect("a small checkpoint serialises")
}
