// The row update of the subgroup matmuls (matmul_sg, matmul_sg32, matmul_sg_t). The
// including file declares `acc`, [row][half]: row i's columns 0..3 at 2i, 4..7 at
// 2i + 1. Callers pass i as a literal, so after inlining every index is constant and
// the accumulator stays out of per-lane addressed memory.
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
