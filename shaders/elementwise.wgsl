// Elementwise maps over flat f32 buffers. Every binding is read_write so a caller may pass
// the same buffer in several slots (in-place ReLU, dx = dy in place): wgpu rejects a buffer
// bound read-only and writable in one dispatch, but accepts it writable twice.
// Slots: a = input, b = second input, c = output. An entry ignores the slots it does not use.

struct Params {
    n: u32,
    alpha: f32,
    beta: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + li;
}

// c = max(a, 0)
@compute @workgroup_size(256)
fn relu_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i < p.n) { c[i] = max(a[i], 0.0); }
}

// c = b where the saved ReLU output a > 0, else 0 (a = y, b = dy, c = dx).
@compute @workgroup_size(256)
fn relu_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i < p.n) { c[i] = select(0.0, b[i], a[i] > 0.0); }
}

// Written as 1/(1+e^-x) for x ≥ 0 and e^x/(1+e^x) below, so neither branch overflows.
fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    let s = 1.0 / (1.0 + e);
    return select(e * s, s, x >= 0.0);
}

// c = σ(a)
@compute @workgroup_size(256)
fn sigmoid_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i < p.n) { c[i] = sigmoid(a[i]); }
}

// c = b·y·(1−y) with the saved output y = a.
@compute @workgroup_size(256)
fn sigmoid_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i < p.n) { let y = a[i]; c[i] = b[i] * y * (1.0 - y); }
}

// c = alpha·a + beta·c (beta = 0 never reads c, so c may hold NaN garbage).
@compute @workgroup_size(256)
fn axpby(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i < p.n) {
        var v = p.alpha * a[i];
        if (p.beta != 0.0) { v = v + p.beta * c[i]; }
        c[i] = v;
    }
}

// c = alpha
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i < p.n) { c[i] = p.alpha; }
}
