// C = A·B + beta·C with A stored transposed (k × m, contiguous along m) for CPU
// adapters whose subgroup is the 8-lane SIMD vector; the layout of mm_v4t, sharing A
// across the subgroup like matmul_sg.wgsl. Per 4 values of k, lane l loads the vec4 of
// rows row0 + 4·(l mod 4) .. +3 at k = 4q + l/4 and at 4q + 2 + l/4: together the
// 16 × 4 block of A every lane needs, handed round by scalar broadcasts, so that each
// row's (spilled) partial sums are loaded and stored once per 4 values of k.
// One workgroup = one subgroup of 8 lanes: 16 rows × 64 columns, 8 columns per lane.
// Host-side preconditions (src/nn/matmul.rs): subgroup size exactly 8; those of mm_v4t
// (`a_vec_m_ok`) and k a multiple of 4. Control flow stays uniform through the broadcasts.

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

// [row][half]: row i's columns 0..3 at 2i, 4..7 at 2i + 1.
var<private> acc: array<vec4<f32>, 32>;

//@include sg_row_fma.wgsl

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
        row_fma(0u, vec4<f32>(subgroupBroadcast(a0[0], 0u), subgroupBroadcast(a0[0], 4u), subgroupBroadcast(a1[0], 0u), subgroupBroadcast(a1[0], 4u)), bq);
        row_fma(1u, vec4<f32>(subgroupBroadcast(a0[1], 0u), subgroupBroadcast(a0[1], 4u), subgroupBroadcast(a1[1], 0u), subgroupBroadcast(a1[1], 4u)), bq);
        row_fma(2u, vec4<f32>(subgroupBroadcast(a0[2], 0u), subgroupBroadcast(a0[2], 4u), subgroupBroadcast(a1[2], 0u), subgroupBroadcast(a1[2], 4u)), bq);
        row_fma(3u, vec4<f32>(subgroupBroadcast(a0[3], 0u), subgroupBroadcast(a0[3], 4u), subgroupBroadcast(a1[3], 0u), subgroupBroadcast(a1[3], 4u)), bq);
        row_fma(4u, vec4<f32>(subgroupBroadcast(a0[0], 1u), subgroupBroadcast(a0[0], 5u), subgroupBroadcast(a1[0], 1u), subgroupBroadcast(a1[0], 5u)), bq);
        row_fma(5u, vec4<f32>(subgroupBroadcast(a0[1], 1u), subgroupBroadcast(a0[1], 5u), subgroupBroadcast(a1[1], 1u), subgroupBroadcast(a1[1], 5u)), bq);
        row_fma(6u, vec4<f32>(subgroupBroadcast(a0[2], 1u), subgroupBroadcast(a0[2], 5u), subgroupBroadcast(a1[2], 1u), subgroupBroadcast(a1[2], 5u)), bq);
        row_fma(7u, vec4<f32>(subgroupBroadcast(a0[3], 1u), subgroupBroadcast(a0[3], 5u), subgroupBroadcast(a1[3], 1u), subgroupBroadcast(a1[3], 5u)), bq);
        row_fma(8u, vec4<f32>(subgroupBroadcast(a0[0], 2u), subgroupBroadcast(a0[0], 6u), subgroupBroadcast(a1[0], 2u), subgroupBroadcast(a1[0], 6u)), bq);
        row_fma(9u, vec4<f32>(subgroupBroadcast(a0[1], 2u), subgroupBroadcast(a0[1], 6u), subgroupBroadcast(a1[1], 2u), subgroupBroadcast(a1[1], 6u)), bq);
        row_fma(10u, vec4<f32>(subgroupBroadcast(a0[2], 2u), subgroupBroadcast(a0[2], 6u), subgroupBroadcast(a1[2], 2u), subgroupBroadcast(a1[2], 6u)), bq);
        row_fma(11u, vec4<f32>(subgroupBroadcast(a0[3], 2u), subgroupBroadcast(a0[3], 6u), subgroupBroadcast(a1[3], 2u), subgroupBroadcast(a1[3], 6u)), bq);
        row_fma(12u, vec4<f32>(subgroupBroadcast(a0[0], 3u), subgroupBroadcast(a0[0], 7u), subgroupBroadcast(a1[0], 3u), subgroupBroadcast(a1[0], 7u)), bq);
        row_fma(13u, vec4<f32>(subgroupBroadcast(a0[1], 3u), subgroupBroadcast(a0[1], 7u), subgroupBroadcast(a1[1], 3u), subgroupBroadcast(a1[1], 7u)), bq);
        row_fma(14u, vec4<f32>(subgroupBroadcast(a0[2], 3u), subgroupBroadcast(a0[2], 7u), subgroupBroadcast(a1[2], 3u), subgroupBroadcast(a1[2], 7u)), bq);
        row_fma(15u, vec4<f32>(subgroupBroadcast(a0[3], 3u), subgroupBroadcast(a0[3], 7u), subgroupBroadcast(a1[3], 3u), subgroupBroadcast(a1[3], 7u)), bq);
    }
    if (col0 >= p.n) { return; }
    let cq = (p.c_off + bi * p.c_bs) / 4u;
    let crs = p.c_rs / 4u;
    store_row(0u, row0, col0, cq, crs);
    store_row(1u, row0, col0, cq, crs);
    store_row(2u, row0, col0, cq, crs);
    store_row(3u, row0, col0, cq, crs);
    store_row(4u, row0, col0, cq, crs);
    store_row(5u, row0, col0, cq, crs);
    store_row(6u, row0, col0, cq, crs);
    store_row(7u, row0, col0, cq, crs);
    store_row(8u, row0, col0, cq, crs);
    store_row(9u, row0, col0, cq, crs);
    store_row(10u, row0, col0, cq, crs);
    store_row(11u, row0, col0, cq, crs);
    store_row(12u, row0, col0, cq, crs);
    store_row(13u, row0, col0, cq, crs);
    store_row(14u, row0, col0, cq, crs);
    store_row(15u, row0, col0, cq, crs);
}
