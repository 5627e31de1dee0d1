// C = A·B + beta·C with A stored transposed (k × m, contiguous along m) for CPU
// adapters whose subgroup is the 8-lane SIMD vector; the layout of mm_v4t, sharing A
// across the subgroup like matmul_sg.wgsl. Per 4 values of k, lane l loads the vec4 of
// rows row0 + 4·(l mod 4) .. +3 at k = 4q + l/4 and at 4q + 2 + l/4: together the
// 16 × 4 block of A every lane needs, handed round by broadcasts.
// One workgroup = one subgroup of 8 lanes: 16 rows × 64 columns, 8 columns per lane.
// Host-side preconditions (src/nn/matmul.rs): subgroup size exactly 8; those of mm_v4t
// (`a_vec_m_ok`) and k a multiple of 4. Control flow stays uniform through the broadcasts.

struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
    a_bs: u32, b_bs: u32, c_bs: u32, c_rs: u32,
    a_off: u32, b_off: u32, c_off: u32, beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

// [row][half]: row i's columns 0..3 at 2i, 4..7 at 2i + 1.
var<private> acc: array<vec4<f32>, 32>;

// Rows 4g..4g+3 += a4 (their A values at one k) times that k's B columns (lo, hi).
fn group_fma(g: u32, a4: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>) {
    for (var r = 0u; r < 4u; r = r + 1u) {
        let i = 4u * g + r;
        let s = vec4<f32>(a4[r]);
        acc[2u * i] = fma(s, lo, acc[2u * i]);
        acc[2u * i + 1u] = fma(s, hi, acc[2u * i + 1u]);
    }
}

@compute @workgroup_size(8, 1, 1)
fn mm_sg_t(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(subgroup_invocation_id) lane: u32) {
    let bi = wid.z;
    let row0 = wid.y * 16u;
    let col0 = (wid.x * 8u + lane) * 8u;
    let bb = p.b_off + bi * p.b_bs;
    let q0 = (bb + min(col0, p.n - 4u)) / 4u;
    let q1 = (bb + min(col0 + 4u, p.n - 4u)) / 4u;
    let brs = p.b_rs / 4u;
    let ar = (p.a_off + bi * p.a_bs + min(row0 + 4u * (lane % 4u), p.m - 4u)) / 4u;
    let acs = p.a_cs / 4u;
    let klane = lane / 4u;
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        let a0 = a[ar + (4u * q + klane) * acs];
        let a1 = a[ar + (4u * q + 2u + klane) * acs];
        var bq: array<vec4<f32>, 8>;
        for (var kk = 0u; kk < 4u; kk = kk + 1u) {
            let kb = (4u * q + kk) * brs;
            bq[2u * kk] = b[q0 + kb];
            bq[2u * kk + 1u] = b[q1 + kb];
        }
        group_fma(0u, subgroupBroadcast(a0, 0u), bq[0], bq[1]);
        group_fma(1u, subgroupBroadcast(a0, 1u), bq[0], bq[1]);
        group_fma(2u, subgroupBroadcast(a0, 2u), bq[0], bq[1]);
        group_fma(3u, subgroupBroadcast(a0, 3u), bq[0], bq[1]);
        group_fma(0u, subgroupBroadcast(a0, 4u), bq[2], bq[3]);
        group_fma(1u, subgroupBroadcast(a0, 5u), bq[2], bq[3]);
        group_fma(2u, subgroupBroadcast(a0, 6u), bq[2], bq[3]);
        group_fma(3u, subgroupBroadcast(a0, 7u), bq[2], bq[3]);
        group_fma(0u, subgroupBroadcast(a1, 0u), bq[4], bq[5]);
        group_fma(1u, subgroupBroadcast(a1, 1u), bq[4], bq[5]);
        group_fma(2u, subgroupBroadcast(a1, 2u), bq[4], bq[5]);
        group_fma(3u, subgroupBroadcast(a1, 3u), bq[4], bq[5]);
        group_fma(0u, subgroupBroadcast(a1, 4u), bq[6], bq[7]);
        group_fma(1u, subgroupBroadcast(a1, 5u), bq[6], bq[7]);
        group_fma(2u, subgroupBroadcast(a1, 6u), bq[6], bq[7]);
        group_fma(3u, subgroupBroadcast(a1, 7u), bq[6], bq[7]);
    }
    if (col0 >= p.n) { return; }
    let cq = (p.c_off + bi * p.c_bs) / 4u;
    let crs = p.c_rs / 4u;
    for (var i = 0u; i < 16u; i = i + 1u) {
        let row = row0 + i;
        if (row < p.m) {
            let i0 = cq + row * crs + col0 / 4u;
            var v0 = acc[2u * i];
            if (p.beta != 0.0) { v0 = v0 + p.beta * c[i0]; }
            c[i0] = v0;
            if (col0 + 4u < p.n) {
                var v1 = acc[2u * i + 1u];
                if (p.beta != 0.0) { v1 = v1 + p.beta * c[i0 + 1u]; }
                c[i0 + 1u] = v1;
            }
        }
    }
}
