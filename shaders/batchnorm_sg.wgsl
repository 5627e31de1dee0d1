// Batch-norm training forward and backward for CPU adapters whose subgroup is the 8-lane
// SIMD vector (llvmpipe on 256-bit AVX): one 8-lane workgroup (= one subgroup) per
// channel, reductions by subgroupAdd instead of batchnorm.wgsl's shared-memory tree
// (whose barriers each split a workgroup into a loop over its vectors), and element
// addresses advanced by additions instead of a division per element.
//
// Same Params, bindings and semantics as batchnorm.wgsl's train_forward / backward.
// Host-side precondition (src/nn/batchnorm.rs, `BnVariant::Sg`): subgroup size exactly 8.

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
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> saved: array<f32>;
@group(0) @binding(7) var<storage, read_write> ch0: array<f32>;
@group(0) @binding(8) var<storage, read_write> ch1: array<f32>;

const LANES: u32 = 8u;

// Address of element e (of the channel's n·l) of channel ch.
fn first(e: u32, ch: u32) -> u32 {
    return (e / p.l) * p.c * p.l + ch * p.l + e % p.l;
}

// Advances (address, offset within l) by LANES elements of the channel.
fn step(a: ptr<function, u32>, off: ptr<function, u32>) {
    *a = *a + LANES;
    *off = *off + LANES;
    let jump = (p.c - 1u) * p.l;
    while (*off >= p.l) {
        *off = *off - p.l;
        *a = *a + jump;
    }
}

@compute @workgroup_size(8, 1, 1)
fn train_forward_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let ch = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so subgroupAdd below runs with all lanes or none.
    if (ch >= p.c) { return; }
    let m = p.n * p.l;
    let fm = f32(m);
    let a0 = first(li, ch);
    let o0 = li % p.l;

    var s = 0.0;
    var a = a0;
    var off = o0;
    for (var e = li; e < m; e = e + LANES) { s = s + x[a]; step(&a, &off); }
    let mean = subgroupAdd(s) / fm;

    var q = 0.0;
    a = a0;
    off = o0;
    for (var e = li; e < m; e = e + LANES) { let d = x[a] - mean; q = q + d * d; step(&a, &off); }
    let var_b = subgroupAdd(q) / fm;
    let inv = 1.0 / sqrt(var_b + p.eps);

    if (li == 0u) {
        saved[ch] = mean;
        saved[p.c + ch] = inv;
        if (p.update_running != 0u) {
            ch0[ch] = (1.0 - p.momentum) * ch0[ch] + p.momentum * mean;
            ch1[ch] = (1.0 - p.momentum) * ch1[ch] + p.momentum * var_b * fm / (fm - 1.0);
        }
    }
    let g = gamma[ch] * inv;
    let bb = beta[ch];
    a = a0;
    off = o0;
    for (var e = li; e < m; e = e + LANES) { out[a] = fma(x[a] - mean, g, bb); step(&a, &off); }
}

@compute @workgroup_size(8, 1, 1)
fn backward_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let ch = wid.x + wid.y * nwg.x;
    if (ch >= p.c) { return; }
    let m = p.n * p.l;
    let mean = saved[ch];
    let inv = saved[p.c + ch];
    let a0 = first(li, ch);
    let o0 = li % p.l;

    var s1 = 0.0;
    var s2 = 0.0;
    var a = a0;
    var off = o0;
    for (var e = li; e < m; e = e + LANES) {
        let g = dy[a];
        s1 = s1 + g;
        s2 = s2 + g * (x[a] - mean) * inv;
        step(&a, &off);
    }
    let sum_dy = subgroupAdd(s1);
    let sum_dyx = subgroupAdd(s2);

    if (li == 0u) {
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
    a = a0;
    off = o0;
    for (var e = li; e < m; e = e + LANES) {
        let xh = (x[a] - mean) * inv;
        out[a] = k * (dy[a] - mdy - xh * mdyx);
        step(&a, &off);
    }
}
