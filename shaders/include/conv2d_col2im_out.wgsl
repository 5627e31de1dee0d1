// The end of the vec4 col2im kernels (conv2d_v4.wgsl col2im4, conv2d_s2_col2im.wgsl):
// image columns iw0 .. iw0 + 3 of row ih of (b, ci) = act(v + bias[ci]), the bias
// only with p.flag = 1. The including file declares `aux` (the bias, array<f32>) and
// `dst` (the image, array<vec4<f32>>).
fn store_image_quad(b: u32, ci: u32, ih: u32, iw0: u32, v: vec4<f32>) {
    var out = v;
    if (p.flag == 1u) { out = out + vec4<f32>(aux[ci]); }
    if (p.act == ACT_RELU) { out = max(out, vec4<f32>(0.0)); }
    dst[(((b * p.c + ci) * p.h + ih) * p.w + iw0) / 4u] = out;
}
