// 1-D max pooling over x[n·c][l] (rows independent), window k, step stride, no padding:
// y[row][j] = max over x[row][j·stride ..][..k], first maximum on ties (as PyTorch).
// The forward saves the winning position within the row; the backward gathers, for
// each input element, the gradients of the windows it won, so it overwrites dx without
// atomics or a separate clear even when windows overlap. Shape math is host-side.
// DOC-IDS's window 2, step 2 has its own pair (`*_k2`): one workgroup per row, each
// output's two inputs read and written by the same lane, with no per-element integer
// division, which CPU adapters do one lane at a time.

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

// Window 2, step 2: one workgroup per row (`rows` of them), lanes striding along it.
@compute @workgroup_size(64, 1, 1)
fn max_forward_k2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }
    let base = row * p.l;
    for (var j = lid.x; j < p.lo; j = j + 64u) {
        let a = src[base + 2u * j];
        let b = src[base + 2u * j + 1u];
        // The first maximum on ties.
        let second = b > a;
        dst[row * p.lo + j] = select(a, b, second);
        arg[row * p.lo + j] = 2u * j + u32(second);
    }
}

// Window 2, step 2: dx[2j], dx[2j + 1] from window j; an odd row's last element, in no
// window, gets 0.
@compute @workgroup_size(64, 1, 1)
fn max_backward_k2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) { return; }
    let base = row * p.l;
    for (var j = lid.x; j < p.lo; j = j + 64u) {
        let g = src[row * p.lo + j];
        let second = arg[row * p.lo + j] != 2u * j;
        dst[base + 2u * j] = select(g, 0.0, second);
        dst[base + 2u * j + 1u] = select(0.0, g, second);
    }
    if (lid.x == 0u && p.l > 2u * p.lo) { dst[base + p.l - 1u] = 0.0; }
}
