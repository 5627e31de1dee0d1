// C = A·B + beta·C like matmul.wgsl, for the common case where B and C are row-major
// with widths and offsets that are multiples of 4: B and C are read and written as
// vec4 (one 16-byte access instead of four strided ones), which is what lets CPU
// adapters vectorise and GPUs issue wide loads. A keeps arbitrary strides.
// Host-side preconditions (checked in src/nn/matmul.rs): b_cs = 1, n, b_rs, b_bs,
// b_off, c_rs, c_bs, c_off all multiples of 4.

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

// 4 rows × 8 columns per invocation, 8×8 invocations: a 32×64 tile per workgroup.
@compute @workgroup_size(8, 8, 1)
fn mm_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bi = gid.z;
    let row0 = gid.y * 4u;
    let col0 = gid.x * 8u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let abase = p.a_off + bi * p.a_bs;
    // Second vec4 column: clamped so it stays in bounds when n is not a multiple of 8.
    let q0 = (p.b_off + bi * p.b_bs + col0) / 4u;
    let q1 = (p.b_off + bi * p.b_bs + min(col0 + 4u, p.n - 4u)) / 4u;
    let brs = p.b_rs / 4u;
    var ai: array<u32, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) { ai[i] = abase + min(row0 + i, p.m - 1u) * p.a_rs; }
    var acc0: array<vec4<f32>, 4>;
    var acc1: array<vec4<f32>, 4>;
    for (var k = 0u; k < p.k; k = k + 1u) {
        let b0 = b[q0 + k * brs];
        let b1 = b[q1 + k * brs];
        let ka = k * p.a_cs;
        for (var i = 0u; i < 4u; i = i + 1u) {
            let av = vec4<f32>(a[ai[i] + ka]);
            acc0[i] = fma(av, b0, acc0[i]);
            acc1[i] = fma(av, b1, acc1[i]);
        }
    }
    let cq = (p.c_off + bi * p.c_bs) / 4u;
    let crs = p.c_rs / 4u;
    for (var i = 0u; i < 4u; i = i + 1u) {
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

// Larger register blocks of the same product: on CPU adapters every storage access
// costs far more than an FMA, so more FMAs per loaded value pay even when the
// accumulators no longer fit in registers. Chosen per adapter by a short measurement
// (src/nn/tune.rs); same preconditions and semantics as mm_v4.

// 8 rows × 8 columns per invocation: a 64×64 tile per workgroup.
@compute @workgroup_size(8, 8, 1)
fn mm_v4_r8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bi = gid.z;
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let abase = p.a_off + bi * p.a_bs;
    let q0 = (p.b_off + bi * p.b_bs + col0) / 4u;
    let q1 = (p.b_off + bi * p.b_bs + min(col0 + 4u, p.n - 4u)) / 4u;
    let brs = p.b_rs / 4u;
    var ai: array<u32, 8>;
    for (var i = 0u; i < 8u; i = i + 1u) { ai[i] = abase + min(row0 + i, p.m - 1u) * p.a_rs; }
    var acc0: array<vec4<f32>, 8>;
    var acc1: array<vec4<f32>, 8>;
    for (var k = 0u; k < p.k; k = k + 1u) {
        let b0 = b[q0 + k * brs];
        let b1 = b[q1 + k * brs];
        let ka = k * p.a_cs;
        for (var i = 0u; i < 8u; i = i + 1u) {
            let av = vec4<f32>(a[ai[i] + ka]);
            acc0[i] = fma(av, b0, acc0[i]);
            acc1[i] = fma(av, b1, acc1[i]);
        }
    }
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

// 16 rows × 8 columns per invocation: a 128×64 tile per workgroup.
@compute @workgroup_size(8, 8, 1)
fn mm_v4_r16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bi = gid.z;
    let row0 = gid.y * 16u;
    let col0 = gid.x * 8u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let abase = p.a_off + bi * p.a_bs;
    let q0 = (p.b_off + bi * p.b_bs + col0) / 4u;
    let q1 = (p.b_off + bi * p.b_bs + min(col0 + 4u, p.n - 4u)) / 4u;
    let brs = p.b_rs / 4u;
    var ai: array<u32, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) { ai[i] = abase + min(row0 + i, p.m - 1u) * p.a_rs; }
    var acc0: array<vec4<f32>, 16>;
    var acc1: array<vec4<f32>, 16>;
    for (var k = 0u; k < p.k; k = k + 1u) {
        let b0 = b[q0 + k * brs];
        let b1 = b[q1 + k * brs];
        let ka = k * p.a_cs;
        for (var i = 0u; i < 16u; i = i + 1u) {
            let av = vec4<f32>(a[ai[i] + ka]);
            acc0[i] = fma(av, b0, acc0[i]);
            acc1[i] = fma(av, b1, acc1[i]);
        }
    }
    let cq = (p.c_off + bi * p.c_bs) / 4u;
    let crs = p.c_rs / 4u;
    for (var i = 0u; i < 16u; i = i + 1u) {
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
