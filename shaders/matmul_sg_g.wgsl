// C = A·B + beta·C with arbitrary strides (the layouts of matmul.wgsl's mm_reg, e.g.
// convolutions whose lengths are not multiples of 4) for CPU adapters whose subgroup
// is the 8-lane SIMD vector: each lane loads 2 values of A per k and the subgroup
// shares them by broadcasts (see matmul_sg.wgsl for why that pays).
// One workgroup = one subgroup of 8 lanes: 16 rows × 64 columns, 8 columns per lane.
// Host-side precondition (src/nn/matmul.rs): subgroup size exactly 8. Control flow
// stays uniform through the broadcasts: lanes past n compute clamped columns and do
// not store them.

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// [row][half]: row i's columns 0..3 at 2i, 4..7 at 2i + 1.
var<private> acc: array<vec4<f32>, 32>;

fn row_fma(i: u32, av: f32, b0: vec4<f32>, b1: vec4<f32>) {
    acc[2u * i] = fma(vec4<f32>(av), b0, acc[2u * i]);
    acc[2u * i + 1u] = fma(vec4<f32>(av), b1, acc[2u * i + 1u]);
}

@compute @workgroup_size(8, 1, 1)
fn mm_sg_g(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(subgroup_invocation_id) lane: u32) {
    let bi = wid.z;
    let row0 = wid.y * 16u;
    let col0 = (wid.x * 8u + lane) * 8u;
    let abase = p.a_off + bi * p.a_bs;
    let ra0 = abase + min(row0 + lane, p.m - 1u) * p.a_rs;
    let ra1 = abase + min(row0 + 8u + lane, p.m - 1u) * p.a_rs;
    var bj: array<u32, 8>;
    for (var j = 0u; j < 8u; j = j + 1u) {
        bj[j] = p.b_off + bi * p.b_bs + min(col0 + j, p.n - 1u) * p.b_cs;
    }
    for (var k = 0u; k < p.k; k = k + 1u) {
        let a0 = a[ra0 + k * p.a_cs];
        let a1 = a[ra1 + k * p.a_cs];
        let ko = k * p.b_rs;
        let b0 = vec4<f32>(b[bj[0] + ko], b[bj[1] + ko], b[bj[2] + ko], b[bj[3] + ko]);
        let b1 = vec4<f32>(b[bj[4] + ko], b[bj[5] + ko], b[bj[6] + ko], b[bj[7] + ko]);
        row_fma(0u, subgroupBroadcast(a0, 0u), b0, b1);
        row_fma(1u, subgroupBroadcast(a0, 1u), b0, b1);
        row_fma(2u, subgroupBroadcast(a0, 2u), b0, b1);
        row_fma(3u, subgroupBroadcast(a0, 3u), b0, b1);
        row_fma(4u, subgroupBroadcast(a0, 4u), b0, b1);
        row_fma(5u, subgroupBroadcast(a0, 5u), b0, b1);
        row_fma(6u, subgroupBroadcast(a0, 6u), b0, b1);
        row_fma(7u, subgroupBroadcast(a0, 7u), b0, b1);
        row_fma(8u, subgroupBroadcast(a1, 0u), b0, b1);
        row_fma(9u, subgroupBroadcast(a1, 1u), b0, b1);
        row_fma(10u, subgroupBroadcast(a1, 2u), b0, b1);
        row_fma(11u, subgroupBroadcast(a1, 3u), b0, b1);
        row_fma(12u, subgroupBroadcast(a1, 4u), b0, b1);
        row_fma(13u, subgroupBroadcast(a1, 5u), b0, b1);
        row_fma(14u, subgroupBroadcast(a1, 6u), b0, b1);
        row_fma(15u, subgroupBroadcast(a1, 7u), b0, b1);
    }
    if (col0 >= p.n) { return; }
    let cbase = p.c_off + bi * p.c_bs;
    for (var i = 0u; i < 16u; i = i + 1u) {
        let row = row0 + i;
        if (row < p.m) {
            let lo = acc[2u * i];
            let hi = acc[2u * i + 1u];
            for (var j = 0u; j < 4u; j = j + 1u) {
                let col = col0 + j;
                if (col < p.n) {
                    let idx = cbase + row * p.c_rs + col;
                    var v = lo[j];
                    if (p.beta != 0.0) { v = v + p.beta * c[idx]; }
                    c[idx] = v;
                }
                if (col + 4u < p.n) {
                    let idx = cbase + row * p.c_rs + col + 4u;
                    var v = hi[j];
                    if (p.beta != 0.0) { v = v + p.beta * c[idx]; }
                    c[idx] = v;
                }
            }
        }
    }
}
