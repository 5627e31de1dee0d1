// Losses with their gradients, and per-sample anomaly scores.
//
// A loss is two dispatches: an entry that writes gradients and leaves one partial sum per
// workgroup in `partial` (grid-stride loops over a fixed number of workgroups ≤ 256, then a
// workgroup tree reduction), and `finish`, one workgroup that sums the partials into
// out[out_at]·value_scale. The order of additions is fixed, so a loss repeats bit for bit.
// `gmul` multiplies the derivative of each term: the host folds the loss weight and the
// normalisation (1/N, 1/count, ...) into it.

struct Params {
    n: u32,          // elements (elementwise losses) or rows (row-wise ones)
    cols: u32,       // row length
    groups: u32,     // pass-1 workgroups = partials to sum
    flags: u32,      // gradient outputs, see below
    gmul: f32,
    value_scale: f32,
    out_at: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> ga: array<f32>;
@group(0) @binding(5) var<storage, read_write> gb: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

const WRITE_A: u32 = 1u;
const ACC_A: u32 = 2u;
const WRITE_B: u32 = 4u;
const ACC_B: u32 = 8u;

fn put_ga(i: u32, g: f32) {
    if ((p.flags & WRITE_A) != 0u) {
        var v = g * p.gmul;
        if ((p.flags & ACC_A) != 0u) { v = v + ga[i]; }
        ga[i] = v;
    }
}

fn put_gb(i: u32, g: f32) {
    if ((p.flags & WRITE_B) != 0u) {
        var v = g * p.gmul;
        if ((p.flags & ACC_B) != 0u) { v = v + gb[i]; }
        gb[i] = v;
    }
}

var<workgroup> red: array<f32, 256>;

// Sum of v over the workgroup (result valid in every invocation). Must be reached in
// uniform control flow.
fn wg_sum(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (li < s) { red[li] = red[li] + red[li + s]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    let s = 1.0 / (1.0 + e);
    return select(e * s, s, x >= 0.0);
}

// Σ max(l,0) − l·x + log(1 + e^−|l|) over logits a and targets b; d/dl = σ(l) − x.
@compute @workgroup_size(256)
fn bce_logits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = wid.x * 256u + li; i < p.n; i = i + p.groups * 256u) {
        let l = a[i];
        let x = b[i];
        s = s + (max(l, 0.0) - l * x + log(1.0 + exp(-abs(l))));
        put_ga(i, sigmoid(l) - x);
    }
    let t = wg_sum(li, s);
    if (li == 0u) { partial[wid.x] = t; }
}

// KL(N(μ, e^lv) ‖ N(0, 1)) = Σ −½(1 + lv − μ² − e^lv) over μ = a, lv = b.
@compute @workgroup_size(256)
fn kl_normal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = wid.x * 256u + li; i < p.n; i = i + p.groups * 256u) {
        let mu = a[i];
        let lv = b[i];
        let e = exp(lv);
        s = s - 0.5 * (1.0 + lv - mu * mu - e);
        put_ga(i, mu);
        put_gb(i, 0.5 * (e - 1.0));
    }
    let t = wg_sum(li, s);
    if (li == 0u) { partial[wid.x] = t; }
}

// Σ (a − b)²; d/da = 2(a − b) = −d/db.
@compute @workgroup_size(256)
fn sq_diff(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = wid.x * 256u + li; i < p.n; i = i + p.groups * 256u) {
        let d = a[i] - b[i];
        s = s + d * d;
        put_ga(i, 2.0 * d);
        put_gb(i, -2.0 * d);
    }
    let t = wg_sum(li, s);
    if (li == 0u) { partial[wid.x] = t; }
}

// Softmax cross-entropy, one invocation per row of `cols` logits (few classes): Σ_rows
// logsumexp(l) − l[label]; d/dl = softmax(l) − onehot(label). A label ≥ cols makes the
// loss NaN, so a bad label set surfaces as a NaN loss instead of a silent wrong one.
@compute @workgroup_size(256)
fn softmax_ce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var r = wid.x * 256u + li; r < p.n; r = r + p.groups * 256u) {
        let base = r * p.cols;
        var mx = a[base];
        for (var j = 1u; j < p.cols; j = j + 1u) { mx = max(mx, a[base + j]); }
        var z = 0.0;
        for (var j = 0u; j < p.cols; j = j + 1u) { z = z + exp(a[base + j] - mx); }
        let y = labels[r];
        if (y < p.cols) {
            s = s + (mx + log(z) - a[base + y]);
        } else {
            s = s + bitcast<f32>(0x7fc00000u);
        }
        for (var j = 0u; j < p.cols; j = j + 1u) {
            put_ga(base + j, exp(a[base + j] - mx) / z - select(0.0, 1.0, j == y));
        }
    }
    let t = wg_sum(li, s);
    if (li == 0u) { partial[wid.x] = t; }
}

// Compactness over h = a [n rows, cols]: one invocation per column: Σ_i (h_ic − mean_c)²;
// d/dh_ic = 2(h_ic − mean_c) (the path through the mean sums to zero).
@compute @workgroup_size(256)
fn compact(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var c = wid.x * 256u + li; c < p.cols; c = c + p.groups * 256u) {
        var m = 0.0;
        for (var i = 0u; i < p.n; i = i + 1u) { m = m + a[i * p.cols + c]; }
        m = m / f32(p.n);
        for (var i = 0u; i < p.n; i = i + 1u) {
            let d = a[i * p.cols + c] - m;
            s = s + d * d;
            put_ga(i * p.cols + c, 2.0 * d);
        }
    }
    let t = wg_sum(li, s);
    if (li == 0u) { partial[wid.x] = t; }
}

// out[out_at] = value_scale · Σ partial[0..groups).
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = li; i < p.groups; i = i + 256u) { s = s + partial[i]; }
    let t = wg_sum(li, s);
    if (li == 0u) { out[p.out_at] = t * p.value_scale; }
}

// Per-sample scores, one workgroup per row: out[out_at + row] = value_scale · Σ_j term.
fn row_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

// Σ |x − σ(l)| with logits a and inputs b (VAE anomaly score).
@compute @workgroup_size(256)
fn score_l1_sigmoid(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let r = row_index(wid, nwg);
    var s = 0.0;
    if (r < p.n) {
        for (var j = li; j < p.cols; j = j + 256u) {
            let i = r * p.cols + j;
            s = s + abs(b[i] - sigmoid(a[i]));
        }
    }
    let t = wg_sum(li, s);
    if (li == 0u && r < p.n) { out[p.out_at + r] = t * p.value_scale; }
}

// Σ (a − b)² (reconstruction MSE scores, value_scale = 1/cols).
@compute @workgroup_size(256)
fn score_sq_diff(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let r = row_index(wid, nwg);
    var s = 0.0;
    if (r < p.n) {
        for (var j = li; j < p.cols; j = j + 256u) {
            let d = a[r * p.cols + j] - b[r * p.cols + j];
            s = s + d * d;
        }
    }
    let t = wg_sum(li, s);
    if (li == 0u && r < p.n) { out[p.out_at + r] = t * p.value_scale; }
}
