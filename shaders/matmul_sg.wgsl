// C = A·B + beta·C for CPU adapters whose subgroup is the 8-lane SIMD vector
// (llvmpipe on 256-bit AVX): there every storage load is a loop over the lanes,
// while reading one lane's value into all lanes (subgroupBroadcast with a constant
// lane) is one register shuffle. So each lane loads one vec4 of A per row group and the
// subgroup shares them, instead of every lane loading every A value.
// One workgroup = one subgroup of 8 lanes: ROWS rows × 64 columns, 8 columns per lane.
// The B loads, per-lane gathers on CPU adapters, take most of the time there; a taller
// tile feeds each of them to more rows (32 rows: about +20 % on llvmpipe, `block_cost`
// in tests/matmul.rs), at the cost of a larger accumulator (build.rs writes each
// height; the tuner picks per shape class).
// Host-side preconditions (src/nn/matmul.rs, `sg_ok`): subgroup size exactly 8; those
// of mm_v4a (A vec4 along k; B, C vec4 along n). Control flow stays uniform up to the
// last broadcast: lanes past n compute clamped columns and do not store them.
//@variants matmul_sg:16:mm_sg matmul_sg32:32:mm_sg32 matmul_sg64:64:mm_sg64

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
    let abase = p.a_off + bi * p.a_bs;
    // Row group g (rows 8g .. 8g + 7): lane l loads row 8g + l.
    //@for g in 0..GROUPS: let ra${g} = (abase + min(row0 + ${8 * g}u + lane, p.m - 1u) * p.a_rs) / 4u;
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        //@for g in 0..GROUPS: let av${g} = a[ra${g} + q];
        var bq: array<vec4<f32>, 8>;
        for (var kk = 0u; kk < 4u; kk = kk + 1u) {
            let kb = (4u * q + kk) * brs;
            bq[2u * kk] = b[q0 + kb];
            bq[2u * kk + 1u] = b[q1 + kb];
        }
        //@for i in 0..ROWS: row_fma(${i}u, subgroupBroadcast(av${i / 8}, ${i % 8}u), bq);
    }
    if (col0 >= p.n) { return; }
    let cq = (p.c_off + bi * p.c_bs) / 4u;
    let crs = p.c_rs / 4u;
    //@for i in 0..ROWS: store_row(${i}u, row0, col0, cq, crs);
}
