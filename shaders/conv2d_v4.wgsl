// im2col and col2im of shaders/conv2d.wgsl (same geometry, params and results) for
// the common case where the written rows are a multiple of 4 wide: each invocation
// writes 4 neighbouring outputs as one vec4, and the index arithmetic (integer
// divisions, which CPU adapters run one lane at a time) is done once per 4 outputs,
// mostly on workgroup-uniform values.
// Host-side preconditions (src/nn/conv2d.rs): im2col4 needs wo a multiple of 4,
// col2im4 needs w a multiple of 4.

//@include conv2d_params.wgsl
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<vec4<f32>>;

// Image element at (b, ci, ih, iw), 0 outside the image or where the ReLU mask in aux
// is not positive (p.act = ACT_RELU).
fn pixel(b: u32, ci: u32, ih: i32, iw: i32) -> f32 {
    if (ih < 0 || iw < 0 || u32(ih) >= p.h || u32(iw) >= p.w) { return 0.0; }
    let idx = ((b * p.c + ci) * p.h + u32(ih)) * p.w + u32(iw);
    let v = src[idx];
    if (p.act == ACT_RELU && aux[idx] <= 0.0) { return 0.0; }
    return v;
}

// Grid: x = quads of one output plane (ho·wo/4, 8 per workgroup), y = sample,
// z = col row r = (ci, kh, kw).
@compute @workgroup_size(8, 1, 1)
fn im2col4(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(workgroup_id) wid: vec3<u32>) {
    let wq = p.wo / 4u;
    let quad = gid.x;
    if (quad >= p.ho * wq) { return; }
    let b = wid.y;
    let r = wid.z;
    let kk = p.k * p.k;
    let ci = r / kk;
    let kh = (r - ci * kk) / p.k;
    let kw = r - ci * kk - kh * p.k;
    let oh = quad / wq;
    let ow0 = (quad - oh * wq) * 4u;
    let ih = i32(oh * p.stride + kh) - i32(p.pad);
    let iw0 = i32(ow0 * p.stride + kw) - i32(p.pad);
    let s = i32(p.stride);
    let v = vec4<f32>(pixel(b, ci, ih, iw0), pixel(b, ci, ih, iw0 + s),
                      pixel(b, ci, ih, iw0 + 2 * s), pixel(b, ci, ih, iw0 + 3 * s));
    let np = p.n * p.ho * p.wo;
    dst[(r * np + b * p.ho * p.wo + oh * p.wo + ow0) / 4u] = v;
}

// Sum of the col entries im2col copied from image column iw of row ih (given the
// output rows oh that can reach ih, as kh = ih + pad − oh·s).
fn gather(ci: u32, colbase: u32, ih: u32, iw: u32) -> f32 {
    let np = p.n * p.ho * p.wo;
    var acc = 0.0;
    let th = ih + p.pad;
    let tw = iw + p.pad;
    // Output rows oh with 0 ≤ th − oh·s < k, from the largest down.
    for (var oh = i32(th / p.stride); oh >= 0; oh = oh - 1) {
        let kh = th - u32(oh) * p.stride;
        if (kh >= p.k) { break; }
        if (u32(oh) >= p.ho) { continue; }
        for (var ow = i32(tw / p.stride); ow >= 0; ow = ow - 1) {
            let kw = tw - u32(ow) * p.stride;
            if (kw >= p.k) { break; }
            if (u32(ow) >= p.wo) { continue; }
            let r = (ci * p.k + kh) * p.k + kw;
            acc = acc + src[r * np + colbase + u32(oh) * p.wo + u32(ow)];
        }
    }
    return acc;
}

//@include conv2d_col2im_out.wgsl

// Grid: x = quads of one image plane (h·w/4, 8 per workgroup), y = sample, z = channel.
// With flag = 1 adds bias aux[ci], then the activation, like col2im.
@compute @workgroup_size(8, 1, 1)
fn col2im4(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(workgroup_id) wid: vec3<u32>) {
    let wq = p.w / 4u;
    let quad = gid.x;
    if (quad >= p.h * wq) { return; }
    let b = wid.y;
    let ci = wid.z;
    let ih = quad / wq;
    let iw0 = (quad - ih * wq) * 4u;
    let colbase = b * p.ho * p.wo;
    let v = vec4<f32>(gather(ci, colbase, ih, iw0), gather(ci, colbase, ih, iw0 + 1u),
                      gather(ci, colbase, ih, iw0 + 2u), gather(ci, colbase, ih, iw0 + 3u));
    store_image_quad(b, ci, ih, iw0, v);
}
