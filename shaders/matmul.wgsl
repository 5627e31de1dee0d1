// C[b] = A[b]·B[b] + beta·C[b] for a batch of strided matrices.
// A element (m, k) sits at a_off + b·a_bs + m·a_rs + k·a_cs, likewise B (k, n), so the
// host expresses A·B, A·Bᵀ and Aᵀ·B by strides alone. All shape math is host-side.

//@include matmul_params.wgsl
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn store(bi: u32, row: u32, col: u32, v: f32) {
    if (row < p.m && col < p.n) {
        let idx = p.c_off + bi * p.c_bs + row * p.c_rs + col;
        var out = v;
        if (p.beta != 0.0) { out = out + p.beta * c[idx]; }
        c[idx] = out;
    }
}

// ---- Shared-memory tiled: 64×64 output tile per 16×16 workgroup, 4×4 per thread. ----
const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> sa: array<f32, 1024>; // [TK][TM]
var<workgroup> sb: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(16, 16, 1)
fn mm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let bi = wid.z;
    let m0 = wid.y * TM;
    let n0 = wid.x * TN;
    let abase = p.a_off + bi * p.a_bs;
    let bbase = p.b_off + bi * p.b_bs;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TK) {
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = li + 256u * r;
            // Pick the element order that makes neighbouring threads read neighbouring
            // addresses for this operand's layout.
            var mm: u32; var ka: u32;
            if (p.a_cs == 1u) { mm = e / TK; ka = e % TK; } else { mm = e % TM; ka = e / TM; }
            let gm = m0 + mm; let gka = k0 + ka;
            var va = 0.0;
            if (gm < p.m && gka < p.k) { va = a[abase + gm * p.a_rs + gka * p.a_cs]; }
            sa[ka * TM + mm] = va;
            var nn: u32; var kb: u32;
            if (p.b_cs == 1u) { nn = e % TN; kb = e / TN; } else { nn = e / TK; kb = e % TK; }
            let gn = n0 + nn; let gkb = k0 + kb;
            var vb = 0.0;
            if (gn < p.n && gkb < p.k) { vb = b[bbase + gkb * p.b_rs + gn * p.b_cs]; }
            sb[kb * TN + nn] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk = kk + 1u) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                ar[i] = sa[kk * TM + lid.y + 16u * i];
                br[i] = sb[kk * TN + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i][j] = fma(ar[i], br[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            store(bi, m0 + lid.y + 16u * i, n0 + lid.x + 16u * j, acc[i][j]);
        }
    }
}

// ---- Register-blocked, no shared memory: 4 rows × 8 columns per invocation. ----
// CPU adapters (llvmpipe) run workgroup barriers slowly and vectorise across
// invocations; this shape is several times faster there.
@compute @workgroup_size(8, 8, 1)
fn mm_reg(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bi = gid.z;
    let row0 = gid.y * 4u;
    let col0 = gid.x * 8u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let abase = p.a_off + bi * p.a_bs;
    let bbase = p.b_off + bi * p.b_bs;
    // Clamped indices keep every load in bounds without branches; the extra
    // rows and columns are computed and then not stored.
    var ai: array<u32, 4>;
    for (var i = 0u; i < 4u; i = i + 1u) { ai[i] = abase + min(row0 + i, p.m - 1u) * p.a_rs; }
    var bj: array<u32, 8>;
    for (var j = 0u; j < 8u; j = j + 1u) { bj[j] = bbase + min(col0 + j, p.n - 1u) * p.b_cs; }
    var acc: array<vec4<f32>, 8>; // [row][half]
    for (var k = 0u; k < p.k; k = k + 1u) {
        let ko = k * p.b_rs;
        let b0 = vec4<f32>(b[bj[0] + ko], b[bj[1] + ko], b[bj[2] + ko], b[bj[3] + ko]);
        let b1 = vec4<f32>(b[bj[4] + ko], b[bj[5] + ko], b[bj[6] + ko], b[bj[7] + ko]);
        let ka = k * p.a_cs;
        for (var i = 0u; i < 4u; i = i + 1u) {
            let av = a[ai[i] + ka];
            acc[2u * i] = fma(vec4<f32>(av), b0, acc[2u * i]);
            acc[2u * i + 1u] = fma(vec4<f32>(av), b1, acc[2u * i + 1u]);
        }
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            store(bi, row0 + i, col0 + j, acc[2u * i][j]);
            store(bi, row0 + i, col0 + 4u + j, acc[2u * i + 1u][j]);
        }
    }
}
