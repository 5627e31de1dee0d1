// col2im of shaders/conv2d.wgsl (same params and result, bias and activation fused
// as there) for the geometry of shaders/conv2d_s2.wgsl: kernel 4, stride 2, padding 1,
// image rows a multiple of 4 wide (so w = 2·wo). Image columns iw0 .. iw0 + 3 of one
// row take, from each of the two col rows kh that reach it, the col entries of output
// columns m − 1 .. m + 2 (m = iw0 / 2, even): one aligned vec2 per kernel column plus
// one value each side, instead of a loop over candidate outputs per pixel.
// Host-side preconditions (src/nn/conv2d.rs, `col2im`): k = 4, stride = 2, pad = 1,
// w a multiple of 4 and wo = w / 2.

//@include conv2d_params.wgsl
@group(0) @binding(1) var<storage, read> src: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<f32>>;

//@include conv2d_col2im_out.wgsl

// What col row (ci, kh, ·) at output row oh gives image columns iw0 .. iw0 + 3.
fn row_part(ci: u32, kh: u32, colrow: u32, m: u32) -> vec4<f32> {
    let np = p.n * p.ho * p.wo;
    // Halves of (col row kw, output column m), kw = 0..3.
    let h0 = (((ci * 4u + kh) * 4u) * np + colrow + m) / 2u;
    let hs = np / 2u;
    let c0 = src[h0];
    let c1 = src[h0 + hs];
    let c2 = src[h0 + 2u * hs];
    let c3 = src[h0 + 3u * hs];
    var c0_next = 0.0; // kw 0 at m + 2
    if (m + 2u < p.wo) { c0_next = src[h0 + 1u].x; }
    var c3_prev = 0.0; // kw 3 at m − 1
    if (m > 0u) { c3_prev = src[h0 + 3u * hs - 1u].y; }
    // Image column iw0 + j gets kernel column kw from output column (iw0 + j + 1 − kw) / 2.
    return vec4<f32>(c1.x + c3_prev, c0.y + c2.x, c1.y + c3.x, c0_next + c2.y);
}

// Grid: x = quads of one image plane (h·w/4, 8 per workgroup), y = sample, z = channel.
@compute @workgroup_size(8, 1, 1)
fn col2im_k4s2(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(workgroup_id) wid: vec3<u32>) {
    let wq = p.w / 4u;
    let quad = gid.x;
    if (quad >= p.h * wq) { return; }
    let b = wid.y;
    let ci = wid.z;
    let ih = quad / wq;
    let iw0 = (quad - ih * wq) * 4u;
    let m = iw0 / 2u;
    let colbase = b * p.ho * p.wo;
    // Output rows oh reaching image row ih: kh = ih + 1 − 2·oh in 0..3.
    let oh = (ih + 1u) / 2u;
    let kh = (ih + 1u) % 2u;
    var v = vec4<f32>(0.0);
    if (oh < p.ho) { v = v + row_part(ci, kh, colbase + oh * p.wo, m); }
    if (oh >= 1u) { v = v + row_part(ci, kh + 2u, colbase + (oh - 1u) * p.wo, m); }
    store_image_quad(b, ci, ih, iw0, v);
}
