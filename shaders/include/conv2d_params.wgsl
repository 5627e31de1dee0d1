// The conv geometry every conv2d kernel reads (mirrors `ConvParams` in src/nn/conv2d.rs;
// which fields an entry reads is documented at the entry).
struct Params {
    n: u32, c: u32, h: u32, w: u32,
    ho: u32, wo: u32, k: u32, stride: u32,
    pad: u32, total: u32, act: u32, flag: u32,
    rows: u32, len: u32, seg: u32, seg_stride: u32,
    row_stride: u32, chunk: u32, nchunk: u32, spare: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// p.act is `Act::code` (src/nn/mod.rs); the conv2d kernels take none (0) or ReLU.
const ACT_RELU: u32 = 1u;
