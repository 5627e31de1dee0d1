// to_channel_major of shaders/conv2d.wgsl (same params and result) when the plane h·w is a
// multiple of 4: NCHW [n, c, h·w] → channel-major [c, n·h·w], optionally ReLU-masked,
// as vec4s (one load per buffer per 4 elements). The grid carries (quads, sample,
// channel), so there is no integer division (which CPU adapters run one lane at a time);
// each lane moves 4 vec4s, so that a CPU adapter's per-workgroup cost is spread wider.
// Host-side precondition (src/nn/conv2d.rs): h·w a multiple of 4.

//@include conv2d_params.wgsl
// src: NCHW input; aux: the ReLU output used as a mask (act = 1), or any buffer.
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> aux: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<f32>>;

// Grid: x = runs of 32 quads of one plane (h·w/4; 8 lanes per workgroup, 4 quads per
// lane, consecutive lanes on consecutive quads), y = sample, z = channel.
@compute @workgroup_size(8, 1, 1)
fn to_channel_major4(@builtin(local_invocation_index) li: u32,
                     @builtin(workgroup_id) wid: vec3<u32>) {
    let hw4 = p.h * p.w / 4u;
    let b = wid.y;
    let ch = wid.z;
    let si = (b * p.c + ch) * hw4;
    let di = (ch * p.n + b) * hw4;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let quad = wid.x * 32u + k * 8u + li;
        if (quad < hw4) {
            var v = src[si + quad];
            if (p.act == ACT_RELU) {
                v = select(v, vec4<f32>(0.0), aux[si + quad] <= vec4<f32>(0.0));
            }
            dst[di + quad] = v;
        }
    }
}
