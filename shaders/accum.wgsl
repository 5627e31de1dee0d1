// acc[j] += Σ_c src[c·width + j] for j < width, and acc[width] += count.
// Keeps running loss sums on the GPU so training reads them back only now and then.

struct Params { chunks: u32, width: u32, count: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j < p.width) {
        var s = 0.0;
        for (var c = 0u; c < p.chunks; c = c + 1u) { s = s + src[c * p.width + j]; }
        acc[j] = acc[j] + s;
    } else if (j == p.width) {
        acc[j] = acc[j] + p.count;
    }
}
