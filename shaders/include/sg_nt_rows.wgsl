// Row updates and the store of the subgroup A·Bᵀ kernels (matmul_sg_nt.wgsl, each height).
// The including file declares `acc`, [row][column]: vec4 partial sums over k mod 4.
// Callers pass i as a literal, so after inlining every index into acc is constant: a
// loop over rows would put acc in per-lane addressed memory, several times slower.

fn row_dot(i: u32, av: vec4<f32>, bv: array<vec4<f32>, 4>) {
    acc[4u * i] = fma(av, bv[0], acc[4u * i]);
    acc[4u * i + 1u] = fma(av, bv[1], acc[4u * i + 1u]);
    acc[4u * i + 2u] = fma(av, bv[2], acc[4u * i + 2u]);
    acc[4u * i + 3u] = fma(av, bv[3], acc[4u * i + 3u]);
}

// row_dot over two k-quads.
fn row_dot2(i: u32, a0: vec4<f32>, a1: vec4<f32>, b0: array<vec4<f32>, 4>, b1: array<vec4<f32>, 4>) {
    acc[4u * i] = fma(a1, b1[0], fma(a0, b0[0], acc[4u * i]));
    acc[4u * i + 1u] = fma(a1, b1[1], fma(a0, b0[1], acc[4u * i + 1u]));
    acc[4u * i + 2u] = fma(a1, b1[2], fma(a0, b0[2], acc[4u * i + 2u]));
    acc[4u * i + 3u] = fma(a1, b1[3], fma(a0, b0[3], acc[4u * i + 3u]));
}

// Row i of the tile, its vec4 partial sums reduced, to C (i a literal).
fn store_row(i: u32, row0: u32, col0: u32, cbase: u32) {
    let row = row0 + i;
    if (row >= p.m) { return; }
    let s0 = acc[4u * i];
    let s1 = acc[4u * i + 1u];
    let s2 = acc[4u * i + 2u];
    let s3 = acc[4u * i + 3u];
    // Column j of this lane's four is component j of the reduced sums.
    let red = vec4<f32>((s0.x + s0.y) + (s0.z + s0.w), (s1.x + s1.y) + (s1.z + s1.w),
                        (s2.x + s2.y) + (s2.z + s2.w), (s3.x + s3.y) + (s3.z + s3.w));
    for (var j = 0u; j < 4u; j = j + 1u) {
        let col = col0 + j;
        if (col < p.n) {
            let idx = cbase + row * p.c_rs + col;
            var v = red[j];
            if (p.beta != 0.0) { v = v + p.beta * c[idx]; }
            c[idx] = v;
        }
    }
}
