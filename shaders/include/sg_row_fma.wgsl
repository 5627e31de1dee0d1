// The row update and row store of the subgroup matmuls (matmul_sg.wgsl at each height,
// matmul_sg_t). The including file declares `acc`, [row][half]: row i's columns 0..3
// at 2i, 4..7 at 2i + 1. Callers pass i as a literal, so after inlining every index is
// constant and the accumulator stays out of per-lane addressed memory.

// Row i += the 4 k-values `av` times the B rows `bq` ([kk][half]).
fn row_fma(i: u32, av: vec4<f32>, bq: array<vec4<f32>, 8>) {
    var lo = acc[2u * i];
    var hi = acc[2u * i + 1u];
    lo = fma(vec4<f32>(av.x), bq[0], lo);
    hi = fma(vec4<f32>(av.x), bq[1], hi);
    lo = fma(vec4<f32>(av.y), bq[2], lo);
    hi = fma(vec4<f32>(av.y), bq[3], hi);
    lo = fma(vec4<f32>(av.z), bq[4], lo);
    hi = fma(vec4<f32>(av.z), bq[5], hi);
    lo = fma(vec4<f32>(av.w), bq[6], lo);
    hi = fma(vec4<f32>(av.w), bq[7], hi);
    acc[2u * i] = lo;
    acc[2u * i + 1u] = hi;
}

// Row i of the tile to C (i a literal).
fn store_row(i: u32, row0: u32, col0: u32, cq: u32, crs: u32) {
    if (row0 + i >= p.m) { return; }
    let i0 = cq + (row0 + i) * crs + col0 / 4u;
    var v0 = acc[2u * i];
    if (p.beta != 0.0) { v0 = v0 + p.beta * c[i0]; }
    c[i0] = v0;
    if (col0 + 4u < p.n) {
        var v1 = acc[2u * i + 1u];
        if (p.beta != 0.0) { v1 = v1 + p.beta * c[i0 + 1u]; }
        c[i0 + 1u] = v1;
    }
}
