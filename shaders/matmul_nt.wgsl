// C = A·Bᵀ + beta·C where A (m×k) and Bᵀ's source (n×k) are both contiguous along k:
// each output is a dot product of two rows, read as vec4 along k. Weight gradients
// (dW = dYᵀ·X-style products) have this layout; the generic kernel would read B with
// stride k there. Host-side preconditions (src/nn/matmul.rs): a_cs = 1, b_rs = 1,
// k, a_rs, a_bs, a_off, b_cs, b_bs, b_off all multiples of 4.

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// 4 rows × 4 columns per invocation, 8×8 invocations: a 32×32 tile per workgroup.
@compute @workgroup_size(8, 8, 1)
fn mm_nt(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bi = gid.z;
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    var ar: array<u32, 4>;
    var br: array<u32, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) {
        ar[i] = (p.a_off + bi * p.a_bs + min(row0 + i, p.m - 1u) * p.a_rs) / 4u;
        br[i] = (p.b_off + bi * p.b_bs + min(col0 + i, p.n - 1u) * p.b_cs) / 4u;
    }
    // Per-lane partial sums; reduced across lanes once at the end.
    var acc: array<vec4<f32>, 16>;
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        let b0 = b[br[0] + q];
        let b1 = b[br[1] + q];
        let b2 = b[br[2] + q];
        let b3 = b[br[3] + q];
        for (var i = 0u; i < 4u; i = i + 1u) {
            let av = a[ar[i] + q];
            acc[4u * i] = fma(av, b0, acc[4u * i]);
            acc[4u * i + 1u] = fma(av, b1, acc[4u * i + 1u]);
            acc[4u * i + 2u] = fma(av, b2, acc[4u * i + 2u]);
            acc[4u * i + 3u] = fma(av, b3, acc[4u * i + 3u]);
        }
    }
    let cbase = p.c_off + bi * p.c_bs;
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let row = row0 + i;
            let col = col0 + j;
            if (row < p.m && col < p.n) {
                let s = acc[4u * i + j];
                var v = (s.x + s.y) + (s.z + s.w);
                let idx = cbase + row * p.c_rs + col;
                if (p.beta != 0.0) { v = v + p.beta * c[idx]; }
                c[idx] = v;
            }
        }
    }
}
