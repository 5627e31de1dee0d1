// C = A·B + beta·C with A stored transposed (k × m, contiguous along m) for CPU
// adapters whose subgroup is the 8-lane SIMD vector; the layout of mm_v4t, sharing A
// across the subgroup like matmul_sg.wgsl. Per 4 values of k, lane l loads the vec4 of
// rows row0 + 4·(l mod 4) .. +3 at k = 4q + l/4 and at 4q + 2 + l/4: together the
// 16 × 4 block of A every lane needs, handed round by scalar broadcasts, so that each
// row's (spilled) partial sums are loaded and stored once per 4 values of k.
// One workgroup = one subgroup of 8 lanes: ROWS rows × 64 columns, 8 columns per lane;
// each 16-row group of the tile is loaded as above. 32 rows halve the B loads per fma,
// which pays for the larger products and loses where m is small (the tuner picks).
// Host-side preconditions (src/nn/matmul.rs): subgroup size exactly 8; those of mm_v4t
// (`a_vec_m_ok`) and k a multiple of 4. Control flow stays uniform through the broadcasts.

//@variants matmul_sg_t:16:mm_sg_t matmul_sg_t32:32:mm_sg_t32

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

// [row][half]: row i's columns 0..3 at 2i, 4..7 at 2i + 1.
var<private> acc: array<vec4<f32>, ${2 * ROWS}>;

//@include sg_row_fma.wgsl

@compute @workgroup_size(8, 1, 1)
fn ${ENTRY}(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(subgroup_invocation_id) lane: u32) {
    let bi = wid.z;
    let row0 = wid.y * ${ROWS}u;
    let col0 = (wid.x * 8u + lane) * 8u;
    let bb = p.b_off + bi * p.b_bs;
    let q0 = (bb + min(col0, p.n - 4u)) / 4u;
    let q1 = (bb + min(col0 + 4u, p.n - 4u)) / 4u;
    let brs = p.b_rs / 4u;
    //@for h in 0..ROWS / 16: let ar${h} = (p.a_off + bi * p.a_bs + min(row0 + ${16 * h}u + 4u * (lane % 4u), p.m - 4u)) / 4u;
    let acs = p.a_cs / 4u;
    let klane = lane / 4u;
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        //@for h in 0..ROWS / 16: let a${2 * h} = a[ar${h} + (4u * q + klane) * acs];
        //@for h in 0..ROWS / 16: let a${2 * h + 1} = a[ar${h} + (4u * q + 2u + klane) * acs];
        var bq: array<vec4<f32>, 8>;
        for (var kk = 0u; kk < 4u; kk = kk + 1u) {
            let kb = (4u * q + kk) * brs;
            bq[2u * kk] = b[q0 + kb];
            bq[2u * kk + 1u] = b[q1 + kb];
        }
        //@for i in 0..ROWS: row_fma(${i}u, vec4<f32>(subgroupBroadcast(a${i / 16 * 2}[${i % 4}], ${i % 16 / 4}u), subgroupBroadcast(a${i / 16 * 2}[${i % 4}], ${4 + i % 16 / 4}u), subgroupBroadcast(a${i / 16 * 2 + 1}[${i % 4}], ${i % 16 / 4}u), subgroupBroadcast(a${i / 16 * 2 + 1}[${i % 4}], ${4 + i % 16 / 4}u)), bq);
    }
    if (col0 >= p.n) { return; }
    let cq = (p.c_off + bi * p.c_bs) / 4u;
    let crs = p.c_rs / 4u;
    //@for i in 0..ROWS: store_row(${i}u, row0, col0, cq, crs);
}
