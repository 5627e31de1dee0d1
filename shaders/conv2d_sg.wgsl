// Row sums (conv bias gradients) for CPU adapters whose subgroup is the 8-lane SIMD
// vector (llvmpipe on 256-bit AVX): one workgroup is one subgroup, so the reduction
// across lanes is a subgroupAdd instead of conv2d.wgsl's shared-memory tree, whose
// barriers each split a workgroup into a loop over its vectors. Each lane loads vec4s;
// consecutive lanes read consecutive vec4s.
//
// Same Params and row layout as conv2d.wgsl's row_sum: workgroup (chunk, row) sums
// elements [chunk·chunk_len, …) of row `row` into dst[row·nchunk + chunk] (flag = 1: adds
// to it); element j of a row sits at row·row_stride + (j / seg)·seg_stride + j % seg.
// Chunks at or past len write 0 (the host pads nchunk to a multiple of 4 so the partial
// sums can be read back by this same kernel as vec4 rows).
// Host-side preconditions (src/nn/conv2d.rs, `RowSumVariant::Sg`): subgroup size exactly
// 8; seg, seg_stride, row_stride and chunk multiples of 4, seg ≥ 1.

//@include conv2d_params.wgsl
// src: what is summed; aux: the ReLU output used as a gradient mask (act = 1), or any
// buffer; dst: the sums.
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> aux: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

const LANES: u32 = 8u;

@compute @workgroup_size(8, 1, 1)
fn row_sum_sg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let chunk = wid.x;
    let row = wid.y;
    // In vec4 units from here on.
    let seg4 = p.seg / 4u;
    let q0 = chunk * (p.chunk / 4u) + li;
    let q1 = min((chunk + 1u) * (p.chunk / 4u), p.len / 4u);
    // Segment and offset of q0, then advanced without dividing: every step is LANES vec4s.
    var sg = q0 / seg4;
    var off = q0 - sg * seg4;
    let base = row * (p.row_stride / 4u);
    let sstride = p.seg_stride / 4u;
    var s = vec4<f32>(0.0);
    for (var q = q0; q < q1; q = q + LANES) {
        let idx = base + sg * sstride + off;
        var v = src[idx];
        if (p.act == ACT_RELU) { v = select(v, vec4<f32>(0.0), aux[idx] <= vec4<f32>(0.0)); }
        s = s + v;
        off = off + LANES;
        while (off >= seg4) {
            off = off - seg4;
            sg = sg + 1u;
        }
    }
    let t = subgroupAdd((s.x + s.y) + (s.z + s.w));
    if (li == 0u) {
        let o = row * p.nchunk + chunk;
        var v = t;
        if (p.flag == 1u) { v = v + dst[o]; }
        dst[o] = v;
    }
}
