// Counter-based normal noise and the VAE reparameterisation z = μ + ε·exp(½·logvar).
//
// ε comes from Philox-4x32-10 (Salmon et al., SC'11; Random123) keyed by the 64-bit seed,
// with counter (block, step_lo, step_hi, stream): the noise of element i at a training
// step depends on nothing else, so a run repeats exactly and ε can be regenerated instead
// of stored. Each invocation turns one Philox block (4 × u32) into 4 normals by Box–Muller.
// Slots are all writable so unused ones may alias used ones (see elementwise.wgsl):
// r1, r2, r3 inputs, w1, w2 outputs.

struct Params {
    n: u32,
    seed_lo: u32,
    seed_hi: u32,
    step_lo: u32,
    step_hi: u32,
    stream: u32,
    flags: u32,   // reparam_bwd: bit 0 add into dμ, bit 1 add into dlogvar
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> r1: array<f32>;
@group(0) @binding(2) var<storage, read_write> r2: array<f32>;
@group(0) @binding(3) var<storage, read_write> r3: array<f32>;
@group(0) @binding(4) var<storage, read_write> w1: array<f32>;
@group(0) @binding(5) var<storage, read_write> w2: array<f32>;

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const TWO_PI: f32 = 6.283185307179586;
const INV_2_24: f32 = 5.9604644775390625e-8;

// High 32 bits of a 32×32-bit product from 16-bit halves (WGSL has no 64-bit integers).
fn mulhi(a: u32, b: u32) -> u32 {
    let al = a & 0xFFFFu;
    let ah = a >> 16u;
    let bl = b & 0xFFFFu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    return ah * bh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}

fn philox(c_in: vec4<u32>) -> vec4<u32> {
    var c = c_in;
    var k = vec2<u32>(p.seed_lo, p.seed_hi);
    for (var r = 0u; r < 10u; r = r + 1u) {
        let hi0 = mulhi(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mulhi(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    return c;
}

fn block_bits(q: u32) -> vec4<u32> {
    return philox(vec4<u32>(q, p.step_lo, p.step_hi, p.stream));
}

// Two normals from two words: u1 ∈ (0, 1] keeps log finite, u2 ∈ [0, 1).
fn box_muller(x: u32, y: u32) -> vec2<f32> {
    let u1 = (f32(x >> 8u) + 1.0) * INV_2_24;
    let u2 = f32(y >> 8u) * INV_2_24;
    let r = sqrt(-2.0 * log(u1));
    // cos/sin(2π·u2) = −cos/sin(2π·(u2 − ½)): the argument stays in [−π, π), where WGSL
    // bounds the builtins' error; u2 − ½ is exact.
    let t = TWO_PI * (u2 - 0.5);
    return vec2<f32>(-r * cos(t), -r * sin(t));
}

fn block_normals(q: u32) -> vec4<f32> {
    let x = block_bits(q);
    return vec4<f32>(box_muller(x.x, x.y), box_muller(x.z, x.w));
}

fn block_id(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 64u + li;
}

// w1[i] = raw Philox word i, bit-cast (to check the integer generator against the CPU).
@compute @workgroup_size(64)
fn philox_bits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let q = block_id(wid, nwg, li);
    let x = block_bits(q);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let i = 4u * q + j;
        if (i < p.n) { w1[i] = bitcast<f32>(x[j]); }
    }
}

// w1[i] = ε_i ~ N(0, 1).
@compute @workgroup_size(64)
fn normal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let q = block_id(wid, nwg, li);
    let e = block_normals(q);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let i = 4u * q + j;
        if (i < p.n) { w1[i] = e[j]; }
    }
}

// r1 = μ, r2 = logvar → w1 = ε (saved for backward), w2 = z.
@compute @workgroup_size(64)
fn reparam_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let q = block_id(wid, nwg, li);
    let e = block_normals(q);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let i = 4u * q + j;
        if (i < p.n) {
            w1[i] = e[j];
            w2[i] = r1[i] + e[j] * exp(0.5 * r2[i]);
        }
    }
}

// r1 = dz, r2 = logvar, r3 = ε → w1 = dμ = dz, w2 = dlogvar = dz·ε·½·exp(½·logvar).
@compute @workgroup_size(64)
fn reparam_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let q = block_id(wid, nwg, li);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let i = 4u * q + j;
        if (i < p.n) {
            let dz = r1[i];
            var dmu = dz;
            var dlv = dz * r3[i] * 0.5 * exp(0.5 * r2[i]);
            if ((p.flags & 1u) != 0u) { dmu = dmu + w1[i]; }
            if ((p.flags & 2u) != 0u) { dlv = dlv + w2[i]; }
            w1[i] = dmu;
            w2[i] = dlv;
        }
    }
}
