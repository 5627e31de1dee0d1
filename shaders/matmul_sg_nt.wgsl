// C = A·Bᵀ + beta·C (both operands contiguous along k, as matmul_nt.wgsl) for CPU
// adapters whose subgroup is the 8-lane SIMD vector: each lane loads one vec4 of A per
// row group and the subgroup shares them by broadcasts (see matmul_sg.wgsl for why).
// One workgroup = one subgroup of 8 lanes: 8 rows × 32 columns, 4 columns per lane,
// per-(row, column) vec4 partial sums reduced once at the end. The k loop takes two
// quads a turn: the 32 partial sums do not fit in registers, so each fma pair
// saves one load and one store of a spilled sum (+15-20 % on llvmpipe at a VAE
// weight-gradient shape, `block_cost` in tests/matmul.rs; four quads a turn gained less).
// Host-side preconditions (src/nn/matmul.rs, `sg_nt_ok`): subgroup size exactly 8 and
// those of mm_nt (a_cs = 1, b_rs = 1; k, a_rs, a_bs, a_off, b_cs, b_bs, b_off
// multiples of 4). Control flow stays uniform through the broadcasts.

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// [row][column]: partial sums over k mod 4.
var<private> acc: array<vec4<f32>, 32>;

//@include sg_nt_rows.wgsl

@compute @workgroup_size(8, 1, 1)
fn mm_sg_nt(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(subgroup_invocation_id) lane: u32) {
    let bi = wid.z;
    let row0 = wid.y * 8u;
    let col0 = (wid.x * 8u + lane) * 4u;
    let abase = p.a_off + bi * p.a_bs;
    let ra0 = (abase + min(row0 + lane, p.m - 1u) * p.a_rs) / 4u;
    var rb: array<u32, 4>;
    for (var j = 0u; j < 4u; j = j + 1u) {
        rb[j] = (p.b_off + bi * p.b_bs + min(col0 + j, p.n - 1u) * p.b_cs) / 4u;
    }
    let nq = p.k / 4u;
    for (var q = 0u; q + 1u < nq; q = q + 2u) {
        let a0 = a[ra0 + q];
        let a1 = a[ra0 + q + 1u];
        var b0: array<vec4<f32>, 4>;
        var b1: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j = j + 1u) { b0[j] = b[rb[j] + q]; b1[j] = b[rb[j] + q + 1u]; }
        row_dot2(0u, subgroupBroadcast(a0, 0u), subgroupBroadcast(a1, 0u), b0, b1);
        row_dot2(1u, subgroupBroadcast(a0, 1u), subgroupBroadcast(a1, 1u), b0, b1);
        row_dot2(2u, subgroupBroadcast(a0, 2u), subgroupBroadcast(a1, 2u), b0, b1);
        row_dot2(3u, subgroupBroadcast(a0, 3u), subgroupBroadcast(a1, 3u), b0, b1);
        row_dot2(4u, subgroupBroadcast(a0, 4u), subgroupBroadcast(a1, 4u), b0, b1);
        row_dot2(5u, subgroupBroadcast(a0, 5u), subgroupBroadcast(a1, 5u), b0, b1);
        row_dot2(6u, subgroupBroadcast(a0, 6u), subgroupBroadcast(a1, 6u), b0, b1);
        row_dot2(7u, subgroupBroadcast(a0, 7u), subgroupBroadcast(a1, 7u), b0, b1);
    }
    // An odd last quad.
    for (var q = nq & ~1u; q < nq; q = q + 1u) {
        let av0 = a[ra0 + q];
        var bv: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j = j + 1u) { bv[j] = b[rb[j] + q]; }
        row_dot(0u, subgroupBroadcast(av0, 0u), bv);
        row_dot(1u, subgroupBroadcast(av0, 1u), bv);
        row_dot(2u, subgroupBroadcast(av0, 2u), bv);
        row_dot(3u, subgroupBroadcast(av0, 3u), bv);
        row_dot(4u, subgroupBroadcast(av0, 4u), bv);
        row_dot(5u, subgroupBroadcast(av0, 5u), bv);
        row_dot(6u, subgroupBroadcast(av0, 6u), bv);
        row_dot(7u, subgroupBroadcast(av0, 7u), bv);
    }
    let cbase = p.c_off + bi * p.c_bs;
    store_row(0u, row0, col0, cbase);
    store_row(1u, row0, col0, cbase);
    store_row(2u, row0, col0, cbase);
    store_row(3u, row0, col0, cbase);
    store_row(4u, row0, col0, cbase);
    store_row(5u, row0, col0, cbase);
    store_row(6u, row0, col0, cbase);
    store_row(7u, row0, col0, cbase);
}
