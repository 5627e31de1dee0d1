// Dense-layer helpers around the shared matmul: the epilogue that sums split-K partials,
// adds the bias and applies ReLU, and the bias gradient (a column sum over the batch).
// All slots are writable so the caller may alias them freely (see elementwise.wgsl).

struct Params {
    rows: u32,    // batch rows
    cols: u32,    // features per row
    splits: u32,  // number of split-K partials in `src`; 0 = the matmul result is already in `dst`
    flags: u32,   // bit 0: add bias, bit 1: ReLU, bit 2: accumulate into dst
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

const HAS_BIAS: u32 = 1u;
const RELU: u32 = 2u;
const ACCUMULATE: u32 = 4u;

// dst = act(Σ_s src[s] (+ dst if accumulating) + bias[col]); with splits = 0: dst = act(dst + bias).
@compute @workgroup_size(256)
fn epilogue(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let len = p.rows * p.cols;
    let i = (wid.x + wid.y * nwg.x) * 256u + li;
    if (i >= len) { return; }
    var v = 0.0;
    if (p.splits == 0u) {
        v = dst[i];
    } else {
        for (var s = 0u; s < p.splits; s = s + 1u) { v = v + src[s * len + i]; }
        if ((p.flags & ACCUMULATE) != 0u) { v = v + dst[i]; }
    }
    if ((p.flags & HAS_BIAS) != 0u) { v = v + bias[i % p.cols]; }
    if ((p.flags & RELU) != 0u) { v = max(v, 0.0); }
    dst[i] = v;
}

// dst[col] (+)= Σ_row src[row, col]. A 64×4 workgroup covers 64 columns: each of the 4 lanes
// per column sums a strided quarter of the rows (neighbouring threads read neighbouring
// addresses), then the lanes are combined in workgroup memory.
var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(64, 4)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let col = (wid.x + wid.y * nwg.x) * 64u + lid.x;
    var s = 0.0;
    if (col < p.cols) {
        for (var r = lid.y; r < p.rows; r = r + 4u) { s = s + src[r * p.cols + col]; }
    }
    part[lid.y * 64u + lid.x] = s;
    workgroupBarrier();
    if (lid.y == 0u && col < p.cols) {
        var t = (part[lid.x] + part[64u + lid.x]) + (part[128u + lid.x] + part[192u + lid.x]);
        if ((p.flags & ACCUMULATE) != 0u) { t = t + dst[col]; }
        dst[col] = t;
    }
}
