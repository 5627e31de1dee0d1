// The Adam step of shaders/optim.wgsl (same params and formulas) four parameters per
// invocation, for tensors whose length is a multiple of 4: CPU adapters run per-lane
// addresses as a loop over the lanes, so a vec4 per lane moves four times the data per
// such loop.
// Host-side precondition (src/nn/optim.rs, `adam_step`): n a multiple of 4.

//@include optim_params.wgsl
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;

@compute @workgroup_size(256)
fn adam4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= p.n / 4u) { return; }
    //@include adam_update.wgsl
}
