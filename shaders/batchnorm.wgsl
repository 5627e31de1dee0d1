// Batch normalisation over x[n][c][l] per channel c (statistics over the n·l values);
// (N, F) data is the case l = 1. Training forward, eval forward, backward.
//
// A workgroup owns `lanes` channels outright (lanes = 1 for long rows, more when n·l
// is short so threads are not idle; the host picks a power of two) and reduces over
// that channel's n·l values with a shared-memory tree, then writes the normalised
// channel itself: one dispatch per call, no global partials. Mean and variance are two
// passes (sum, then squared deviations) for accuracy. Shape math is host-side.

struct Params {
    n: u32, c: u32, l: u32, lanes: u32,
    momentum: f32, eps: f32, update_running: u32, accumulate: u32,
    total: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
// y (forwards) or dx (backward).
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
// Saved batch statistics: mean at [0, c), inverse std at [c, 2c).
@group(0) @binding(6) var<storage, read_write> saved: array<f32>;
// Running mean (forwards) or dgamma (backward).
@group(0) @binding(7) var<storage, read_write> ch0: array<f32>;
// Running (unbiased) variance (forwards) or dbeta (backward).
@group(0) @binding(8) var<storage, read_write> ch1: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;

fn addr(e: u32, ch: u32) -> u32 {
    return (e / p.l) * p.c * p.l + ch * p.l + e % p.l;
}

// Sum red[] over the row lanes of each channel lane; the result lands in red[lane].
// Must be called from uniform control flow (it holds barriers).
fn tree(li: u32) {
    workgroupBarrier();
    for (var w = WG / p.lanes / 2u; w > 0u; w = w >> 1u) {
        if (li / p.lanes < w) {
            red[li] = red[li] + red[li + w * p.lanes];
            red2[li] = red2[li] + red2[li + w * p.lanes];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256, 1, 1)
fn train_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let lane = li % p.lanes;
    let r0 = li / p.lanes;
    let rstep = WG / p.lanes;
    let ch = (wid.x + wid.y * nwg.x) * p.lanes + lane;
    let valid = ch < p.c;
    let m = p.n * p.l;
    let fm = f32(m);

    var s = 0.0;
    if (valid) { for (var e = r0; e < m; e = e + rstep) { s = s + x[addr(e, ch)]; } }
    red[li] = s;
    red2[li] = 0.0;
    tree(li);
    let mean = red[lane] / fm;
    workgroupBarrier();

    var q = 0.0;
    if (valid) {
        for (var e = r0; e < m; e = e + rstep) { let d = x[addr(e, ch)] - mean; q = q + d * d; }
    }
    red[li] = q;
    tree(li);
    let var_b = red[lane] / fm;
    let inv = 1.0 / sqrt(var_b + p.eps);

    if (!valid) { return; }
    if (r0 == 0u) {
        saved[ch] = mean;
        saved[p.c + ch] = inv;
        if (p.update_running != 0u) {
            // PyTorch: the running variance takes the unbiased estimate.
            ch0[ch] = (1.0 - p.momentum) * ch0[ch] + p.momentum * mean;
            ch1[ch] = (1.0 - p.momentum) * ch1[ch] + p.momentum * var_b * fm / (fm - 1.0);
        }
    }
    let g = gamma[ch] * inv;
    let bb = beta[ch];
    for (var e = r0; e < m; e = e + rstep) {
        let a = addr(e, ch);
        out[a] = fma(x[a] - mean, g, bb);
    }
}

// Running statistics, one invocation per element; total = n·c·l.
@compute @workgroup_size(256, 1, 1)
fn eval_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = (wid.x + wid.y * nwg.x) * WG + lid.x;
    if (idx >= p.total) { return; }
    let ch = (idx / p.l) % p.c;
    let g = gamma[ch] / sqrt(ch1[ch] + p.eps);
    out[idx] = fma(x[idx] - ch0[ch], g, beta[ch]);
}

// dgamma (+)= Σ dy·x̂, dbeta (+)= Σ dy, dx = γ·inv·(dy − mean(dy) − x̂·mean(dy·x̂)).
@compute @workgroup_size(256, 1, 1)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let lane = li % p.lanes;
    let r0 = li / p.lanes;
    let rstep = WG / p.lanes;
    let ch = (wid.x + wid.y * nwg.x) * p.lanes + lane;
    let valid = ch < p.c;
    let m = p.n * p.l;
    var mean = 0.0;
    var inv = 0.0;
    if (valid) { mean = saved[ch]; inv = saved[p.c + ch]; }

    var s1 = 0.0;
    var s2 = 0.0;
    if (valid) {
        for (var e = r0; e < m; e = e + rstep) {
            let a = addr(e, ch);
            let g = dy[a];
            s1 = s1 + g;
            s2 = s2 + g * (x[a] - mean) * inv;
        }
    }
    red[li] = s1;
    red2[li] = s2;
    tree(li);
    let sum_dy = red[lane];
    let sum_dyx = red2[lane];

    if (!valid) { return; }
    if (r0 == 0u) {
        if (p.accumulate != 0u) {
            ch0[ch] = ch0[ch] + sum_dyx;
            ch1[ch] = ch1[ch] + sum_dy;
        } else {
            ch0[ch] = sum_dyx;
            ch1[ch] = sum_dy;
        }
    }
    let fm = f32(m);
    let k = gamma[ch] * inv;
    let mdy = sum_dy / fm;
    let mdyx = sum_dyx / fm;
    for (var e = r0; e < m; e = e + rstep) {
        let a = addr(e, ch);
        let xh = (x[a] - mean) * inv;
        out[a] = k * (dy[a] - mdy - xh * mdyx);
    }
}

// (N, F) data (l = 1), one invocation per channel looping over the n rows: neighbouring
// invocations read neighbouring features, and there is no cross-invocation reduction, so
// no barriers (each costs CPU adapters a pass over the workgroup). The host picks these
// for l = 1 and short n (src/nn/batchnorm.rs, `BnVariant::Cols`).
@compute @workgroup_size(64, 1, 1)
fn train_forward_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = gid.x + gid.y * nwg.x * 64u;
    if (ch >= p.c) { return; }
    let fm = f32(p.n);
    var s = 0.0;
    for (var r = 0u; r < p.n; r = r + 1u) { s = s + x[r * p.c + ch]; }
    let mean = s / fm;
    var q = 0.0;
    for (var r = 0u; r < p.n; r = r + 1u) { let d = x[r * p.c + ch] - mean; q = q + d * d; }
    let var_b = q / fm;
    let inv = 1.0 / sqrt(var_b + p.eps);
    saved[ch] = mean;
    saved[p.c + ch] = inv;
    if (p.update_running != 0u) {
        ch0[ch] = (1.0 - p.momentum) * ch0[ch] + p.momentum * mean;
        ch1[ch] = (1.0 - p.momentum) * ch1[ch] + p.momentum * var_b * fm / (fm - 1.0);
    }
    let g = gamma[ch] * inv;
    let bb = beta[ch];
    for (var r = 0u; r < p.n; r = r + 1u) {
        let a = r * p.c + ch;
        out[a] = fma(x[a] - mean, g, bb);
    }
}

@compute @workgroup_size(64, 1, 1)
fn backward_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = gid.x + gid.y * nwg.x * 64u;
    if (ch >= p.c) { return; }
    let mean = saved[ch];
    let inv = saved[p.c + ch];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var r = 0u; r < p.n; r = r + 1u) {
        let a = r * p.c + ch;
        let g = dy[a];
        s1 = s1 + g;
        s2 = s2 + g * (x[a] - mean) * inv;
    }
    if (p.accumulate != 0u) {
        ch0[ch] = ch0[ch] + s2;
        ch1[ch] = ch1[ch] + s1;
    } else {
        ch0[ch] = s2;
        ch1[ch] = s1;
    }
    let fm = f32(p.n);
    let k = gamma[ch] * inv;
    let mdy = s1 / fm;
    let mdyx = s2 / fm;
    for (var r = 0u; r < p.n; r = r + 1u) {
        let a = r * p.c + ch;
        let xh = (x[a] - mean) * inv;
        out[a] = k * (dy[a] - mdy - xh * mdyx);
    }
}
