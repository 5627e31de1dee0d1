// mm_sg_nt (shaders/matmul_sg_nt.wgsl) with 32 rows per workgroup instead of 8: each
// B load, a per-lane gather on CPU adapters, feeds four times the fmas (on llvmpipe at
// a VAE weight-gradient shape, `block_cost` in tests/matmul.rs: 13 GFLOP per CPU-second
// with 8 rows, 18 with 16, 21 with 32).
// One workgroup = one subgroup of 8 lanes: 32 rows × 32 columns, 4 columns per lane.
// Host-side preconditions: those of mm_sg_nt (src/nn/matmul.rs).

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// [row][column]: partial sums over k mod 4.
var<private> acc: array<vec4<f32>, 128>;

//@include sg_nt_rows.wgsl

@compute @workgroup_size(8, 1, 1)
fn mm_sg_nt32(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(subgroup_invocation_id) lane: u32) {
    let bi = wid.z;
    let row0 = wid.y * 32u;
    let col0 = (wid.x * 8u + lane) * 4u;
    let abase = p.a_off + bi * p.a_bs;
    let ra0 = (abase + min(row0 + lane, p.m - 1u) * p.a_rs) / 4u;
    let ra1 = (abase + min(row0 + 8u + lane, p.m - 1u) * p.a_rs) / 4u;
    let ra2 = (abase + min(row0 + 16u + lane, p.m - 1u) * p.a_rs) / 4u;
    let ra3 = (abase + min(row0 + 24u + lane, p.m - 1u) * p.a_rs) / 4u;
    var rb: array<u32, 4>;
    for (var j = 0u; j < 4u; j = j + 1u) {
        rb[j] = (p.b_off + bi * p.b_bs + min(col0 + j, p.n - 1u) * p.b_cs) / 4u;
    }
    let nq = p.k / 4u;
    for (var q = 0u; q + 1u < nq; q = q + 2u) {
        let x0 = a[ra0 + q];
        let x1 = a[ra0 + q + 1u];
        let y0 = a[ra1 + q];
        let y1 = a[ra1 + q + 1u];
        let z0 = a[ra2 + q];
        let z1 = a[ra2 + q + 1u];
        let w0 = a[ra3 + q];
        let w1 = a[ra3 + q + 1u];
        var b0: array<vec4<f32>, 4>;
        var b1: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j = j + 1u) { b0[j] = b[rb[j] + q]; b1[j] = b[rb[j] + q + 1u]; }
        row_dot2(0u, subgroupBroadcast(x0, 0u), subgroupBroadcast(x1, 0u), b0, b1);
        row_dot2(1u, subgroupBroadcast(x0, 1u), subgroupBroadcast(x1, 1u), b0, b1);
        row_dot2(2u, subgroupBroadcast(x0, 2u), subgroupBroadcast(x1, 2u), b0, b1);
        row_dot2(3u, subgroupBroadcast(x0, 3u), subgroupBroadcast(x1, 3u), b0, b1);
        row_dot2(4u, subgroupBroadcast(x0, 4u), subgroupBroadcast(x1, 4u), b0, b1);
        row_dot2(5u, subgroupBroadcast(x0, 5u), subgroupBroadcast(x1, 5u), b0, b1);
        row_dot2(6u, subgroupBroadcast(x0, 6u), subgroupBroadcast(x1, 6u), b0, b1);
        row_dot2(7u, subgroupBroadcast(x0, 7u), subgroupBroadcast(x1, 7u), b0, b1);
        row_dot2(8u, subgroupBroadcast(y0, 0u), subgroupBroadcast(y1, 0u), b0, b1);
        row_dot2(9u, subgroupBroadcast(y0, 1u), subgroupBroadcast(y1, 1u), b0, b1);
        row_dot2(10u, subgroupBroadcast(y0, 2u), subgroupBroadcast(y1, 2u), b0, b1);
        row_dot2(11u, subgroupBroadcast(y0, 3u), subgroupBroadcast(y1, 3u), b0, b1);
        row_dot2(12u, subgroupBroadcast(y0, 4u), subgroupBroadcast(y1, 4u), b0, b1);
        row_dot2(13u, subgroupBroadcast(y0, 5u), subgroupBroadcast(y1, 5u), b0, b1);
        row_dot2(14u, subgroupBroadcast(y0, 6u), subgroupBroadcast(y1, 6u), b0, b1);
        row_dot2(15u, subgroupBroadcast(y0, 7u), subgroupBroadcast(y1, 7u), b0, b1);
        row_dot2(16u, subgroupBroadcast(z0, 0u), subgroupBroadcast(z1, 0u), b0, b1);
        row_dot2(17u, subgroupBroadcast(z0, 1u), subgroupBroadcast(z1, 1u), b0, b1);
        row_dot2(18u, subgroupBroadcast(z0, 2u), subgroupBroadcast(z1, 2u), b0, b1);
        row_dot2(19u, subgroupBroadcast(z0, 3u), subgroupBroadcast(z1, 3u), b0, b1);
        row_dot2(20u, subgroupBroadcast(z0, 4u), subgroupBroadcast(z1, 4u), b0, b1);
        row_dot2(21u, subgroupBroadcast(z0, 5u), subgroupBroadcast(z1, 5u), b0, b1);
        row_dot2(22u, subgroupBroadcast(z0, 6u), subgroupBroadcast(z1, 6u), b0, b1);
        row_dot2(23u, subgroupBroadcast(z0, 7u), subgroupBroadcast(z1, 7u), b0, b1);
        row_dot2(24u, subgroupBroadcast(w0, 0u), subgroupBroadcast(w1, 0u), b0, b1);
        row_dot2(25u, subgroupBroadcast(w0, 1u), subgroupBroadcast(w1, 1u), b0, b1);
        row_dot2(26u, subgroupBroadcast(w0, 2u), subgroupBroadcast(w1, 2u), b0, b1);
        row_dot2(27u, subgroupBroadcast(w0, 3u), subgroupBroadcast(w1, 3u), b0, b1);
        row_dot2(28u, subgroupBroadcast(w0, 4u), subgroupBroadcast(w1, 4u), b0, b1);
        row_dot2(29u, subgroupBroadcast(w0, 5u), subgroupBroadcast(w1, 5u), b0, b1);
        row_dot2(30u, subgroupBroadcast(w0, 6u), subgroupBroadcast(w1, 6u), b0, b1);
        row_dot2(31u, subgroupBroadcast(w0, 7u), subgroupBroadcast(w1, 7u), b0, b1);
    }
    // An odd last quad.
    for (var q = nq & ~1u; q < nq; q = q + 1u) {
        let x0 = a[ra0 + q];
        let y0 = a[ra1 + q];
        let z0 = a[ra2 + q];
        let w0 = a[ra3 + q];
        var bv: array<vec4<f32>, 4>;
        for (var j = 0u; j < 4u; j = j + 1u) { bv[j] = b[rb[j] + q]; }
        row_dot(0u, subgroupBroadcast(x0, 0u), bv);
        row_dot(1u, subgroupBroadcast(x0, 1u), bv);
        row_dot(2u, subgroupBroadcast(x0, 2u), bv);
        row_dot(3u, subgroupBroadcast(x0, 3u), bv);
        row_dot(4u, subgroupBroadcast(x0, 4u), bv);
        row_dot(5u, subgroupBroadcast(x0, 5u), bv);
        row_dot(6u, subgroupBroadcast(x0, 6u), bv);
        row_dot(7u, subgroupBroadcast(x0, 7u), bv);
        row_dot(8u, subgroupBroadcast(y0, 0u), bv);
        row_dot(9u, subgroupBroadcast(y0, 1u), bv);
        row_dot(10u, subgroupBroadcast(y0, 2u), bv);
        row_dot(11u, subgroupBroadcast(y0, 3u), bv);
        row_dot(12u, subgroupBroadcast(y0, 4u), bv);
        row_dot(13u, subgroupBroadcast(y0, 5u), bv);
        row_dot(14u, subgroupBroadcast(y0, 6u), bv);
        row_dot(15u, subgroupBroadcast(y0, 7u), bv);
        row_dot(16u, subgroupBroadcast(z0, 0u), bv);
        row_dot(17u, subgroupBroadcast(z0, 1u), bv);
        row_dot(18u, subgroupBroadcast(z0, 2u), bv);
        row_dot(19u, subgroupBroadcast(z0, 3u), bv);
        row_dot(20u, subgroupBroadcast(z0, 4u), bv);
        row_dot(21u, subgroupBroadcast(z0, 5u), bv);
        row_dot(22u, subgroupBroadcast(z0, 6u), bv);
        row_dot(23u, subgroupBroadcast(z0, 7u), bv);
        row_dot(24u, subgroupBroadcast(w0, 0u), bv);
        row_dot(25u, subgroupBroadcast(w0, 1u), bv);
        row_dot(26u, subgroupBroadcast(w0, 2u), bv);
        row_dot(27u, subgroupBroadcast(w0, 3u), bv);
        row_dot(28u, subgroupBroadcast(w0, 4u), bv);
        row_dot(29u, subgroupBroadcast(w0, 5u), bv);
        row_dot(30u, subgroupBroadcast(w0, 6u), bv);
        row_dot(31u, subgroupBroadcast(w0, 7u), bv);
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
    store_row(8u, row0, col0, cbase);
    store_row(9u, row0, col0, cbase);
    store_row(10u, row0, col0, cbase);
    store_row(11u, row0, col0, cbase);
    store_row(12u, row0, col0, cbase);
    store_row(13u, row0, col0, cbase);
    store_row(14u, row0, col0, cbase);
    store_row(15u, row0, col0, cbase);
    store_row(16u, row0, col0, cbase);
    store_row(17u, row0, col0, cbase);
    store_row(18u, row0, col0, cbase);
    store_row(19u, row0, col0, cbase);
    store_row(20u, row0, col0, cbase);
    store_row(21u, row0, col0, cbase);
    store_row(22u, row0, col0, cbase);
    store_row(23u, row0, col0, cbase);
    store_row(24u, row0, col0, cbase);
    store_row(25u, row0, col0, cbase);
    store_row(26u, row0, col0, cbase);
    store_row(27u, row0, col0, cbase);
    store_row(28u, row0, col0, cbase);
    store_row(29u, row0, col0, cbase);
    store_row(30u, row0, col0, cbase);
    store_row(31u, row0, col0, cbase);
}
