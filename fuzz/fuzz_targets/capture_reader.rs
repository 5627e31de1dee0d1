//! Any bytes through the capture reader, parser and both sample builders:
//! errors are fine, panics are bugs. Run: `cargo +nightly fuzz run capture_reader`.
#![no_main]

use gpu_nids::ingest::{
    flow::FlowOptions, image::ImageOptions, CaptureReader, FlowBuilder, ImageBuilder, PacketLabel, ParsedPacket,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = CaptureReader::from_bytes("fuzz", data.to_vec()) else { return };
    let mut img = ImageBuilder::new(ImageOptions { min_packets: 1, max_groups: 8, ..Default::default() }, 0);
    let mut fl = FlowBuilder::new(FlowOptions { max_groups: 8, ..Default::default() }, 0);
    let mut out = Vec::new();
    while let Ok(Some(f)) = r.next_frame() {
        let p = ParsedPacket::parse(&f);
        img.push(&p, PacketLabel::default(), &mut out);
        fl.push(&p, PacketLabel::default(), &mut out);
        out.clear();
    }
    img.finish(&mut out);
    fl.finish(&mut out);
});
