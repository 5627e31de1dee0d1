// C = A·Bᵀ + beta·C (both operands contiguous along k, as matmul_nt.wgsl) for CPU
// adapters whose subgroup is the 8-lane SIMD vector: each lane loads one vec4 of A per
// row group and the subgroup shares them by broadcasts (see matmul_sg.wgsl for why).
// One workgroup = one subgroup of 8 lanes: ROWS rows × 32 columns, 4 columns per lane,
// per-(row, column) vec4 partial sums reduced once at the end. The k loop takes two
// quads a turn: the partial sums do not fit in registers, so each fma pair saves one
// load and one store of a spilled sum (+15-20 % on llvmpipe; four quads a turn gained
// less). Taller tiles feed each B load, a per-lane gather on CPU adapters, to more
// rows: at a VAE weight-gradient shape (`block_cost` in tests/matmul.rs) 13, 18 and 21
// GFLOP per CPU-second with 8, 16 and 32 rows (build.rs writes each height; the tuner
// picks per shape class).
// Host-side preconditions (src/nn/matmul.rs, `nt_ok` and `sg8`): subgroup size exactly
// 8; a_cs = 1, b_rs = 1; k, a_rs, a_bs, a_off, b_cs, b_bs, b_off multiples of 4.
// Control flow stays uniform through the broadcasts.
//@variants matmul_sg_nt:8:mm_sg_nt matmul_sg_nt16:16:mm_sg_nt16 matmul_sg_nt32:32:mm_sg_nt32

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// [row][column]: partial sums over k mod 4.
var<private> acc: array<vec4<f32>, ${4 * ROWS}>;

//@include sg_nt_rows.wgsl

@compute @workgroup_size(8, 1, 1)
fn ${ENTRY}(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(subgroup_invocation_id) lane: u32) {
    let bi = wid.z;
    let row0 = wid.y * ${ROWS}u;
    let col0 = (wid.x * 8u + lane) * 4u;
    let abase = p.a_off + bi * p.a_bs;
    // Row group g (rows 8g .. 8g + 7): lane l loads row 8g + l.
    //@for g in 0..GROUPS: let ra${g} = (abase + min(row0 + ${8 * g}u + lane, p.m - 1u) * p.a_rs) / 4u;
    var rb: array<u32, 4>;
    for (var j = 0u; j < 4u; j = j + 1u) {
        rb[j] = (p.b_off + bi * p.b_bs + min(col0 + j, p.n - 1u) * p.b_cs) / 4u;
    }
    let nq = p.k / 4u;
    for (var q = 0u; q + 1u < nq; q = q + 2u) {
        //@for g in 0..GROUPS: let lo${g} = a[ra${g} + q];
        //@for g in 0..GROUPS: let hi${g} = a[ra${g} + q + 1u];
        var b0: array<vec4<f32>, 4>;
        var b1: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j = j + 1u) { b0[j] = b[rb[j] + q]; b1[j] = b[rb[j] + q + 1u]; }
        //@for i in 0..ROWS: row_dot2(${i}u, subgroupBroadcast(lo${i / 8}, ${i % 8}u), subgroupBroadcast(hi${i / 8}, ${i % 8}u), b0, b1);
    }
    // An odd last quad.
    for (var q = nq & ~1u; q < nq; q = q + 1u) {
        //@for g in 0..GROUPS: let lo${g} = a[ra${g} + q];
        var bv: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j = j + 1u) { bv[j] = b[rb[j] + q]; }
        //@for i in 0..ROWS: row_dot(${i}u, subgroupBroadcast(lo${i / 8}, ${i % 8}u), bv);
    }
    let cbase = p.c_off + bi * p.c_bs;
    //@for i in 0..ROWS: store_row(${i}u, row0, col0, cbase);
}
