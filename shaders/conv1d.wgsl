// 1-D convolution and transposed convolution as im2col / col2im around the shared
// matmul (src/nn/conv1d.rs records the matmuls), plus the small kernels around them:
// bias + activation epilogue, activation backward mask, bias gradient (per-channel
// tree reduction) and the sum of per-sample weight-gradient partials.
//
// "Image" = x[n][c][l] (NCL); "col" = col[n][c·k + kk][lc], col[.., c·k+kk, j] =
// x[.., c, j·stride − pad + kk] (zero outside). A conv1d forward is im2col then W·col;
// its input gradient is Wᵀ·dy then col2im. A transposed conv swaps the two roles.
// Col rows are lcs ≥ lc apart, the columns in between zero: a conv1d pads its rows to
// a multiple of 4 so the matmul can take its vec4 forms (src/nn/conv1d.rs).
// All shape math is host-side; the fields below mean what conv1d.rs says they mean.

struct Params {
    n: u32, c: u32, l: u32, lc: u32,
    k: u32, stride: u32, pad: u32, act: u32,
    total: u32, has_bias: u32, accumulate: u32, rows: u32,
    lcs: u32, src_rs: u32, dst_rs: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
// Second input: the bias (per channel) or the activation output y (act_backward).
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

const ACT_NONE: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_SIGMOID: u32 = 2u;

fn act(v: f32) -> f32 {
    if (p.act == ACT_RELU) { return max(v, 0.0); }
    if (p.act == ACT_SIGMOID) { return 1.0 / (1.0 + exp(-v)); }
    return v;
}

// Derivative of the activation expressed through its output y (what the forward saved).
fn act_grad(y: f32) -> f32 {
    if (p.act == ACT_RELU) { return select(0.0, 1.0, y > 0.0); }
    if (p.act == ACT_SIGMOID) { return y * (1.0 - y); }
    return 1.0;
}

fn linear(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid.x;
}

// dst = col of src, padding columns included. One workgroup per col row (`rows` =
// n·c·k of them), lanes along it, as bias_act and for the same reason.
@compute @workgroup_size(64, 1, 1)
fn im2col(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= p.rows) { return; }
    let kk = r % p.k;
    let src_row = (r / p.k) * p.l; // image row n·c + ch
    let base = r * p.lcs;
    for (var j = lid.x; j < p.lcs; j = j + 64u) {
        let pos = i32(j * p.stride + kk) - i32(p.pad);
        var v = 0.0;
        if (j < p.lc && pos >= 0 && pos < i32(p.l)) { v = src[src_row + u32(pos)]; }
        dst[base + j] = v;
    }
}

// dst = act(col2im(src) + bias): a gather (each image element sums the ≤ k col entries
// that map onto it), so no atomics and a deterministic order. total = n·c·l.
@compute @workgroup_size(256, 1, 1)
fn col2im(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = linear(wid, nwg, lid);
    if (idx >= p.total) { return; }
    let i = idx % p.l;
    let row = idx / p.l; // n·c + ch
    let base = row * p.k * p.lcs;
    var s = 0.0;
    for (var kk = 0u; kk < p.k; kk = kk + 1u) {
        let t = i32(i + p.pad) - i32(kk);
        if (t < 0) { break; }
        let tu = u32(t);
        if (tu % p.stride != 0u) { continue; }
        let j = tu / p.stride;
        if (j < p.lc) { s = s + src[base + kk * p.lcs + j]; }
    }
    if (p.has_bias != 0u) { s = s + aux[row % p.c]; }
    dst[idx] = act(s);
}

// Rows of l values moved between row strides (src_rs → dst_rs), with the bias and
// activation applied: dst[row][j] = act(src[row][j] + bias[row % c]) for j < l and 0
// in the padding columns l ≤ j < dst_rs. It both unpads the matmul's padded output
// into [n, c, l] and pads a [n, c, l] gradient for the matmul. One workgroup per row
// (`rows` = n·c of them), its lanes striding along the row: finding row and column
// from a flat index would cost an integer division per element, which CPU adapters
// do one lane at a time.
@compute @workgroup_size(64, 1, 1)
fn bias_act(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }
    var bias = 0.0;
    if (p.has_bias != 0u) { bias = aux[row % p.c]; }
    for (var j = lid.x; j < p.dst_rs; j = j + 64u) {
        var v = 0.0;
        if (j < p.l) { v = act(src[row * p.src_rs + j] + bias); }
        dst[row * p.dst_rs + j] = v;
    }
}

// dst = src · act'(y), src = dL/dy, aux = y (the activation output).
@compute @workgroup_size(256, 1, 1)
fn act_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = linear(wid, nwg, lid);
    if (idx >= p.total) { return; }
    dst[idx] = src[idx] * act_grad(aux[idx]);
}

// Bias gradient: dst[ch] (+)= Σ over n, l of src[n][ch][l]. One workgroup per channel,
// strided partial sums then a shared-memory tree.
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn channel_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let ch = wid.x + wid.y * nwg.x;
    let m = p.n * p.l;
    var s = 0.0;
    if (ch < p.c) {
        for (var e = li; e < m; e = e + 256u) {
            let nn = e / p.l;
            s = s + src[(nn * p.c + ch) * p.l + e % p.l];
        }
    }
    red[li] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w >> 1u) {
        if (li < w) { red[li] = red[li] + red[li + w]; }
        workgroupBarrier();
    }
    if (li == 0u && ch < p.c) {
        if (p.accumulate != 0u) { dst[ch] = dst[ch] + red[0]; } else { dst[ch] = red[0]; }
    }
}

// Weight gradient: dst[i] (+)= Σ_r src[r·total + i] over the `rows` per-sample
// partials the batched matmul wrote. Neighbouring threads read neighbouring addresses.
@compute @workgroup_size(256, 1, 1)
fn batch_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = linear(wid, nwg, lid);
    if (idx >= p.total) { return; }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r = r + 1u) {
        s = s + src[r * p.total + idx];
    }
    if (p.accumulate != 0u) { dst[idx] = dst[idx] + s; } else { dst[idx] = s; }
}
