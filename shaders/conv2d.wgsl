// The data-movement and reduction halves of 2-D convolution; the products themselves
// run on the shared matmul kernel (src/nn/conv2d.rs wires them).
//
// Every kernel speaks in one "conv geometry": input image [n, c, h, w], output grid
// [ho, wo], square kernel k, stride, pad. The column matrix col has rows (ci, kh, kw)
// and columns (n, oh, ow): element (r, j) at r·(n·ho·wo) + j. A transposed convolution
// is run as the geometry of the convolution it is the adjoint of (host-side mapping).
// All shape math is host-side; the uniform carries it.

//@include conv2d_params.wgsl
// src: what is read; aux: the ReLU output used as a gradient mask, or the bias;
// dst: what is written. Entries that need fewer bind any other buffer there.
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

const WG: u32 = 256u;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

// Gradient flowing back through a fused ReLU: zero where the forward output was not positive.
fn masked(idx: u32) -> f32 {
    let g = src[idx];
    if (p.act == ACT_RELU && aux[idx] <= 0.0) { return 0.0; }
    return g;
}

fn activate(v: f32) -> f32 {
    if (p.act == ACT_RELU) { return max(v, 0.0); }
    return v;
}

// col[(ci, kh, kw), (b, oh, ow)] = image[b, ci, oh·s − pad + kh, ow·s − pad + kw] (0 outside),
// with the image optionally masked by a ReLU output in aux. One thread per col element:
// consecutive threads write consecutive columns.
@compute @workgroup_size(256, 1, 1)
fn im2col(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let idx = linear_id(wid, nwg, li);
    if (idx >= p.total) { return; }
    let np = p.n * p.ho * p.wo;
    let r = idx / np;
    let j = idx - r * np;
    let kk = p.k * p.k;
    let ci = r / kk;
    let kr = r - ci * kk;
    let kh = kr / p.k;
    let kw = kr - kh * p.k;
    let hw = p.ho * p.wo;
    let b = j / hw;
    let o = j - b * hw;
    let oh = o / p.wo;
    let ow = o - oh * p.wo;
    // Signed so padding reads as "outside" rather than wrapping.
    let ih = i32(oh * p.stride + kh) - i32(p.pad);
    let iw = i32(ow * p.stride + kw) - i32(p.pad);
    var v = 0.0;
    if (ih >= 0 && iw >= 0 && u32(ih) < p.h && u32(iw) < p.w) {
        v = masked(((b * p.c + ci) * p.h + u32(ih)) * p.w + u32(iw));
    }
    dst[idx] = v;
}

// The adjoint of im2col, as a gather (no atomics, deterministic): each image element sums
// the col entries that im2col copied from it. With flag = 1 adds bias aux[ci], then act.
@compute @workgroup_size(256, 1, 1)
fn col2im(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let idx = linear_id(wid, nwg, li);
    if (idx >= p.total) { return; }
    let iw = idx % p.w;
    let t0 = idx / p.w;
    let ih = t0 % p.h;
    let t1 = t0 / p.h;
    let ci = t1 % p.c;
    let b = t1 / p.c;
    let np = p.n * p.ho * p.wo;
    let colbase = b * p.ho * p.wo;
    var acc = 0.0;
    for (var kh = 0u; kh < p.k; kh = kh + 1u) {
        // oh·s = ih + pad − kh must be a non-negative multiple of s below ho·s.
        let th = ih + p.pad;
        if (th < kh) { break; }
        let dh = th - kh;
        let oh = dh / p.stride;
        if (oh * p.stride != dh || oh >= p.ho) { continue; }
        for (var kw = 0u; kw < p.k; kw = kw + 1u) {
            let tw = iw + p.pad;
            if (tw < kw) { break; }
            let dw = tw - kw;
            let ow = dw / p.stride;
            if (ow * p.stride != dw || ow >= p.wo) { continue; }
            let r = (ci * p.k + kh) * p.k + kw;
            acc = acc + src[r * np + colbase + oh * p.wo + ow];
        }
    }
    if (p.flag == 1u) { acc = acc + aux[ci]; }
    dst[idx] = activate(acc);
}

// In place on an NCHW output: y = act(y + bias[c]); h·w is the plane size.
@compute @workgroup_size(256, 1, 1)
fn bias_act(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let idx = linear_id(wid, nwg, li);
    if (idx >= p.total) { return; }
    var v = dst[idx];
    if (p.flag == 1u) { v = v + aux[(idx / (p.h * p.w)) % p.c]; }
    dst[idx] = activate(v);
}

// NCHW [n, c, h·w] → channel-major [c, n·h·w], optionally ReLU-masked: the layout in
// which a channel's samples form one contiguous row, so the weight gradient becomes a
// single matmul whose reduction spans the whole batch.
@compute @workgroup_size(256, 1, 1)
fn to_channel_major(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let idx = linear_id(wid, nwg, li);
    if (idx >= p.total) { return; }
    let hw = p.h * p.w;
    let nhw = p.n * hw;
    let ch = idx / nhw;
    let j = idx - ch * nhw;
    let b = j / hw;
    let o = j - b * hw;
    dst[idx] = masked((b * p.c + ch) * hw + o);
}

// Row sums, two-level: workgroup (chunk, row) sums elements [chunk·len_c, …) of row
// `row` through shared memory and writes dst[row·nchunk + chunk] (flag = 1: adds to
// it). Element j of a row sits at row·row_stride + (j / seg)·seg_stride + j % seg,
// which covers both a channel of an NCHW tensor and a plain contiguous row.
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn row_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let chunk = wid.x;
    let row = wid.y;
    let j0 = chunk * p.chunk;
    let j1 = min(j0 + p.chunk, p.len);
    var s = 0.0;
    for (var j = j0 + li; j < j1; j = j + WG) {
        let seg = j / p.seg;
        s = s + masked(row * p.row_stride + seg * p.seg_stride + (j - seg * p.seg));
    }
    // Two barriers rather than a tree's eight (each barrier costs CPU adapters a pass over
    // the workgroup): lanes 0..15 each fold 16 partials (consecutive lanes reading
    // consecutive words), then lane 0 folds those 16.
    partial[li] = s;
    workgroupBarrier();
    if (li < 16u) {
        var t = 0.0;
        for (var i = 0u; i < WG; i = i + 16u) { t = t + partial[i + li]; }
        partial[li] = t;
    }
    workgroupBarrier();
    if (li == 0u) {
        var v = 0.0;
        for (var i = 0u; i < 16u; i = i + 1u) { v = v + partial[i]; }
        let o = row * p.nchunk + chunk;
        if (p.flag == 1u) { v = v + dst[o]; }
        dst[o] = v;
    }
}

// dst[e] (+)= Σ_s src[s·total + e] for e < total, s < rows: folds split-K partial
// products. Consecutive threads read consecutive addresses in every slice.
@compute @workgroup_size(256, 1, 1)
fn sum_slices(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let e = linear_id(wid, nwg, li);
    if (e >= p.total) { return; }
    var s = 0.0;
    for (var i = 0u; i < p.rows; i = i + 1u) { s = s + src[i * p.total + e]; }
    if (p.flag == 1u) { s = s + dst[e]; }
    dst[e] = s;
}
