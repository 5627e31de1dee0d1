// Optimizer steps over flat parameter buffers, one invocation per parameter, in
// PyTorch's formulas (torch.optim.Adam / SGD, L2 weight decay added to the gradient).
// Scalars that depend only on the step (bias corrections) are computed on the host in f64.
// Slots: param, grad, m (Adam first moment / SGD momentum buffer), v (Adam second moment).

//@include optim_params.wgsl
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + li;
}

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    //@include adam_update.wgsl
}

@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) li: u32) {
    let i = index(wid, nwg, li);
    if (i >= p.n) { return; }
    let w = param[i];
    var g = grad[i] + p.weight_decay * w;
    if ((p.flags & 1u) != 0u) {
        var buf = g;
        if ((p.flags & 2u) == 0u) { buf = p.beta1 * m[i] + (1.0 - p.dampening) * g; }
        m[i] = buf;
        if ((p.flags & 4u) != 0u) { g = g + p.beta1 * buf; } else { g = buf; }
    }
    param[i] = w - p.lr * g;
}
