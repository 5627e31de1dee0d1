// im2col of shaders/conv2d.wgsl (same params and result) for the one geometry every
// VAE convolution has: kernel 4, stride 2, padding 1, rows a multiple of 4 wide (so
// w = 2·wo). Four outputs ow0..ow0+3 of one output row read input columns
// 2·ow0 − 1 .. 2·ow0 + 8 for the four kernel columns together: two aligned vec4
// loads plus one value each side, instead of 16 single-lane gathers (CPU adapters
// run a per-lane address as a loop over the lanes). One invocation writes those
// four outputs of the four col rows (ci, kh, kw = 0..3).
// Host-side preconditions (src/nn/conv2d.rs, `im2col`): k = 4, stride = 2, pad = 1,
// w and wo multiples of 4.

//@include conv2d_params.wgsl
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> aux: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<f32>>;

// src[q], zeroed where the ReLU mask in aux is not positive (p.act = ACT_RELU).
fn quad(q: u32) -> vec4<f32> {
    let v = src[q];
    if (p.act == ACT_RELU) { return select(vec4<f32>(0.0), v, aux[q] > vec4<f32>(0.0)); }
    return v;
}

// Grid: x = quads of one output plane (ho·wo/4, 8 per workgroup), y = sample,
// z = (ci, kh).
@compute @workgroup_size(8, 1, 1)
fn im2col_k4s2(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(workgroup_id) wid: vec3<u32>) {
    let wq = p.wo / 4u;
    let qo = gid.x;
    if (qo >= p.ho * wq) { return; }
    let b = wid.y;
    let ci = wid.z / 4u;
    let kh = wid.z % 4u;
    let oh = qo / wq;
    let ow0 = (qo - oh * wq) * 4u;
    let ih = i32(2u * oh + kh) - 1;
    var prev = 0.0;
    var v0 = vec4<f32>(0.0);
    var v1 = vec4<f32>(0.0);
    var next = 0.0;
    if (ih >= 0 && u32(ih) < p.h) {
        // Input columns 2·ow0 .. 2·ow0 + 7 as two quads; w = 2·wo keeps them inside.
        let q = (((b * p.c + ci) * p.h + u32(ih)) * p.w + 2u * ow0) / 4u;
        v0 = quad(q);
        v1 = quad(q + 1u);
        if (ow0 > 0u) { prev = quad(q - 1u).w; }
        if (2u * ow0 + 8u < p.w) { next = quad(q + 2u).x; }
    }
    let np = p.n * p.ho * p.wo;
    let r0 = wid.z * 4u; // col row of (ci, kh, kw = 0)
    let o = (b * p.ho * p.wo + oh * p.wo + ow0) / 4u;
    let rs = np / 4u;
    // Output ow0 + j of kernel column kw reads input column 2·(ow0 + j) + kw − 1.
    dst[r0 * rs + o] = vec4<f32>(prev, v0.y, v0.w, v1.y);
    dst[(r0 + 1u) * rs + o] = vec4<f32>(v0.x, v0.z, v1.x, v1.z);
    dst[(r0 + 2u) * rs + o] = vec4<f32>(v0.y, v0.w, v1.y, v1.w);
    dst[(r0 + 3u) * rs + o] = vec4<f32>(v0.z, v1.x, v1.z, next);
}
