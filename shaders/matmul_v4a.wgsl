// C = A·B + beta·C like matmul_v4.wgsl, with A read as vec4 too: on CPU adapters each
// storage load instruction costs about the same whatever its width, so four values
// per load of both operands roughly halves the cost of a product.
//   mm_v4a: A contiguous along k (a_cs = 1): one vec4 holds A[i, 4q..4q+3].
//   mm_v4t: A contiguous along m (a_rs = 1, A stored transposed): one vec4 holds
//           A[4r..4r+3, k].
// Host-side preconditions (src/nn/matmul.rs): those of mm_v4 (b_cs = 1; n, b_rs, b_bs,
// b_off, c_rs, c_bs, c_off multiples of 4), plus for mm_v4a k, a_rs, a_bs, a_off
// multiples of 4 and for mm_v4t m, a_cs, a_bs, a_off multiples of 4.

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

// Writes an 8×8 block (rows row0.., columns col0..) of accumulators, two vec4 per row.
fn store_block(bi: u32, row0: u32, col0: u32, acc0: array<vec4<f32>, 8>, acc1: array<vec4<f32>, 8>) {
    let cq = (p.c_off + bi * p.c_bs) / 4u;
    let crs = p.c_rs / 4u;
    for (var i = 0u; i < 8u; i = i + 1u) {
        let row = row0 + i;
        if (row < p.m) {
            let i0 = cq + row * crs + col0 / 4u;
            var v0 = acc0[i];
            if (p.beta != 0.0) { v0 = v0 + p.beta * c[i0]; }
            c[i0] = v0;
            if (col0 + 4u < p.n) {
                var v1 = acc1[i];
                if (p.beta != 0.0) { v1 = v1 + p.beta * c[i0 + 1u]; }
                c[i0 + 1u] = v1;
            }
        }
    }
}

// 8 rows × 8 columns per invocation, 8×8 invocations: a 64×64 tile per workgroup.
@compute @workgroup_size(8, 8, 1)
fn mm_v4a(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bi = gid.z;
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let q0 = (p.b_off + bi * p.b_bs + col0) / 4u;
    let q1 = (p.b_off + bi * p.b_bs + min(col0 + 4u, p.n - 4u)) / 4u;
    let brs = p.b_rs / 4u;
    var ai: array<u32, 8>;
    for (var i = 0u; i < 8u; i = i + 1u) {
        ai[i] = (p.a_off + bi * p.a_bs + min(row0 + i, p.m - 1u) * p.a_rs) / 4u;
    }
    var acc0: array<vec4<f32>, 8>;
    var acc1: array<vec4<f32>, 8>;
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        var av: array<vec4<f32>, 8>;
        for (var i = 0u; i < 8u; i = i + 1u) { av[i] = a[ai[i] + q]; }
        for (var kk = 0u; kk < 4u; kk = kk + 1u) {
            let kb = (4u * q + kk) * brs;
            let b0 = b[q0 + kb];
            let b1 = b[q1 + kb];
            for (var i = 0u; i < 8u; i = i + 1u) {
                let s = vec4<f32>(av[i][kk]);
                acc0[i] = fma(s, b0, acc0[i]);
                acc1[i] = fma(s, b1, acc1[i]);
            }
        }
    }
    store_block(bi, row0, col0, acc0, acc1);
}

// Same block with A stored transposed (k × m): two vec4 loads give the 8 rows at one k.
@compute @workgroup_size(8, 8, 1)
fn mm_v4t(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bi = gid.z;
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let q0 = (p.b_off + bi * p.b_bs + col0) / 4u;
    let q1 = (p.b_off + bi * p.b_bs + min(col0 + 4u, p.n - 4u)) / 4u;
    let brs = p.b_rs / 4u;
    // Rows past m are clamped to the last vec4 of rows: computed, not stored.
    let r0 = (p.a_off + bi * p.a_bs + row0) / 4u;
    let r1 = (p.a_off + bi * p.a_bs + min(row0 + 4u, p.m - 4u)) / 4u;
    let acs = p.a_cs / 4u;
    var acc0: array<vec4<f32>, 8>;
    var acc1: array<vec4<f32>, 8>;
    for (var k = 0u; k < p.k; k = k + 1u) {
        let a0 = a[r0 + k * acs];
        let a1 = a[r1 + k * acs];
        let b0 = b[q0 + k * brs];
        let b1 = b[q1 + k * brs];
        for (var i = 0u; i < 4u; i = i + 1u) {
            let s0 = vec4<f32>(a0[i]);
            let s1 = vec4<f32>(a1[i]);
            acc0[i] = fma(s0, b0, acc0[i]);
            acc1[i] = fma(s0, b1, acc1[i]);
            acc0[i + 4u] = fma(s1, b0, acc0[i + 4u]);
            acc1[i + 4u] = fma(s1, b1, acc1[i + 4u]);
        }
    }
    store_block(bi, row0, col0, acc0, acc1);
}
