// 1-D max pooling over x[n·c][l] (rows independent), window k, step stride, no padding:
// y[row][j] = max over x[row][j·stride ..][..k], first maximum on ties (as PyTorch).
// The forward saves the winning position within the row; the backward gathers, for
// each input element, the gradients of the windows it won, so it overwrites dx without
// atomics or a separate clear even when windows overlap. Shape math is host-side.

struct Params {
    rows: u32, l: u32, lo: u32, k: u32,
    stride: u32, total: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// x in the forward, dy in the backward.
@group(0) @binding(1) var<storage, read> src: array<f32>;
// y in the forward, dx in the backward.
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// Argmax within the row: written by the forward, read by the backward.
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + lid.x;
}

// One invocation per output; total = rows·lo.
@compute @workgroup_size(256, 1, 1)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = linear(wid, nwg, lid);
    if (idx >= p.total) { return; }
    let j = idx % p.lo;
    let row = idx / p.lo;
    let i0 = j * p.stride;
    let base = row * p.l;
    var best = src[base + i0];
    var at = i0;
    for (var t = 1u; t < p.k; t = t + 1u) {
        let v = src[base + i0 + t];
        if (v > best) { best = v; at = i0 + t; }
    }
    dst[idx] = best;
    arg[idx] = at;
}

// One invocation per input element; total = rows·l.
@compute @workgroup_size(256, 1, 1)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = linear(wid, nwg, lid);
    if (idx >= p.total) { return; }
    let i = idx % p.l;
    let row = idx / p.l;
    // Windows j with j·stride ≤ i < j·stride + k.
    var j0 = 0u;
    if (i + 1u > p.k) { j0 = (i + 1u - p.k + p.stride - 1u) / p.stride; }
    let j1 = min(i / p.stride + 1u, p.lo);
    var g = 0.0;
    for (var j = j0; j < j1; j = j + 1u) {
        let o = row * p.lo + j;
        if (arg[o] == i) { g = g + src[o]; }
    }
    dst[idx] = g;
}
