// mm_sg (shaders/matmul_sg.wgsl) with 32 rows per workgroup instead of 16: each B
// load, a per-lane gather on CPU adapters and most of mm_sg's time there, feeds twice
// the fmas. The accumulator (64 vec4) no longer fits in registers, so every index into
// it must be a constant after inlining (a loop over it would put it in per-lane
// addressed memory, several times slower): the rows are written out one by one.
// One workgroup = one subgroup of 8 lanes: 32 rows × 64 columns, 8 columns per lane.
// Host-side preconditions: those of mm_sg (src/nn/matmul.rs).

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

// [row][half]: row i's columns 0..3 at 2i, 4..7 at 2i + 1.
var<private> acc: array<vec4<f32>, 64>;

//@include sg_row_fma.wgsl

@compute @workgroup_size(8, 1, 1)
fn mm_sg32(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(subgroup_invocation_id) lane: u32) {
    let bi = wid.z;
    let row0 = wid.y * 32u;
    let col0 = (wid.x * 8u + lane) * 8u;
    let bb = p.b_off + bi * p.b_bs;
    let q0 = (bb + min(col0, p.n - 4u)) / 4u;
    let q1 = (bb + min(col0 + 4u, p.n - 4u)) / 4u;
    let brs = p.b_rs / 4u;
    let abase = p.a_off + bi * p.a_bs;
    let ra0 = (abase + min(row0 + lane, p.m - 1u) * p.a_rs) / 4u;
    let ra1 = (abase + min(row0 + 8u + lane, p.m - 1u) * p.a_rs) / 4u;
    let ra2 = (abase + min(row0 + 16u + lane, p.m - 1u) * p.a_rs) / 4u;
    let ra3 = (abase + min(row0 + 24u + lane, p.m - 1u) * p.a_rs) / 4u;
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        let av0 = a[ra0 + q];
        let av1 = a[ra1 + q];
        let av2 = a[ra2 + q];
        let av3 = a[ra3 + q];
        var bq: array<vec4<f32>, 8>;
        for (var kk = 0u; kk < 4u; kk = kk + 1u) {
            let kb = (4u * q + kk) * brs;
            bq[2u * kk] = b[q0 + kb];
            bq[2u * kk + 1u] = b[q1 + kb];
        }
        row_fma(0u, subgroupBroadcast(av0, 0u), bq);
        row_fma(1u, subgroupBroadcast(av0, 1u), bq);
        row_fma(2u, subgroupBroadcast(av0, 2u), bq);
        row_fma(3u, subgroupBroadcast(av0, 3u), bq);
        row_fma(4u, subgroupBroadcast(av0, 4u), bq);
        row_fma(5u, subgroupBroadcast(av0, 5u), bq);
        row_fma(6u, subgroupBroadcast(av0, 6u), bq);
        row_fma(7u, subgroupBroadcast(av0, 7u), bq);
        row_fma(8u, subgroupBroadcast(av1, 0u), bq);
        row_fma(9u, subgroupBroadcast(av1, 1u), bq);
        row_fma(10u, subgroupBroadcast(av1, 2u), bq);
        row_fma(11u, subgroupBroadcast(av1, 3u), bq);
        row_fma(12u, subgroupBroadcast(av1, 4u), bq);
        row_fma(13u, subgroupBroadcast(av1, 5u), bq);
        row_fma(14u, subgroupBroadcast(av1, 6u), bq);
        row_fma(15u, subgroupBroadcast(av1, 7u), bq);
        row_fma(16u, subgroupBroadcast(av2, 0u), bq);
        row_fma(17u, subgroupBroadcast(av2, 1u), bq);
        row_fma(18u, subgroupBroadcast(av2, 2u), bq);
        row_fma(19u, subgroupBroadcast(av2, 3u), bq);
        row_fma(20u, subgroupBroadcast(av2, 4u), bq);
        row_fma(21u, subgroupBroadcast(av2, 5u), bq);
        row_fma(22u, subgroupBroadcast(av2, 6u), bq);
        row_fma(23u, subgroupBroadcast(av2, 7u), bq);
        row_fma(24u, subgroupBroadcast(av3, 0u), bq);
        row_fma(25u, subgroupBroadcast(av3, 1u), bq);
        row_fma(26u, subgroupBroadcast(av3, 2u), bq);
        row_fma(27u, subgroupBroadcast(av3, 3u), bq);
        row_fma(28u, subgroupBroadcast(av3, 4u), bq);
        row_fma(29u, subgroupBroadcast(av3, 5u), bq);
        row_fma(30u, subgroupBroadcast(av3, 6u), bq);
        row_fma(31u, subgroupBroadcast(av3, 7u), bq);
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
    store_row(16u, row0, col0, cq, crs);
    store_row(17u, row0, col0, cq, crs);
    store_row(18u, row0, col0, cq, crs);
    store_row(19u, row0, col0, cq, crs);
    store_row(20u, row0, col0, cq, crs);
    store_row(21u, row0, col0, cq, crs);
    store_row(22u, row0, col0, cq, crs);
    store_row(23u, row0, col0, cq, crs);
    store_row(24u, row0, col0, cq, crs);
    store_row(25u, row0, col0, cq, crs);
    store_row(26u, row0, col0, cq, crs);
    store_row(27u, row0, col0, cq, crs);
    store_row(28u, row0, col0, cq, crs);
    store_row(29u, row0, col0, cq, crs);
    store_row(30u, row0, col0, cq, crs);
    store_row(31u, row0, col0, cq, crs);
}
