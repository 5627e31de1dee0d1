//! Seeded host-side parameter initialisation with PyTorch's defaults, and the small
//! host RNG it draws from (xoshiro256++ seeded through splitmix64; no external crate).
//!
//! PyTorch's Linear/ConvNd/ConvTransposeNd `reset_parameters`: weight
//! kaiming_uniform_(a = √5), i.e. U(−b, b) with b = gain·√(3/fan_in), gain = √(2/(1+a²)),
//! which is b = 1/√fan_in; bias U(−1/√fan_in, 1/√fan_in) with the weight's fan_in.
//! fan_in = weight.size(1) · ∏ kernel dims, so a conv-transpose weight [C_in, C_out, k…]
//! has fan_in = C_out·∏k. The values differ from PyTorch's (another generator); the
//! distributions are the same.

/// splitmix64: one step (state advance + output mix). Also seeds xoshiro.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ (Blackman & Vigna).
#[derive(Clone, Debug)]
pub struct HostRng {
    s: [u64; 4],
}

impl HostRng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        HostRng {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in [0, n) (n > 0), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        let mut m = self.next_u64() as u128 * n as u128;
        if (m as u64) < n {
            let t = n.wrapping_neg() % n;
            while (m as u64) < t {
                m = self.next_u64() as u128 * n as u128;
            }
        }
        (m >> 64) as u64
    }
}

/// torch.nn.init._calculate_fan_in_and_fan_out's fan_in: size(1) · ∏ size(2..).
pub fn fan_in(weight_shape: &[usize]) -> usize {
    assert!(
        weight_shape.len() >= 2,
        "fan_in needs a weight of at least 2 dimensions, got {weight_shape:?}"
    );
    weight_shape[1] * weight_shape[2..].iter().product::<usize>()
}

/// kaiming_uniform_(a, mode = fan_in, nonlinearity = leaky_relu) bound.
pub fn kaiming_uniform_bound(a: f64, fan_in: usize) -> f64 {
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    gain * (3.0 / fan_in as f64).sqrt()
}

fn uniform_vec(rng: &mut HostRng, len: usize, bound: f64) -> Vec<f32> {
    (0..len)
        .map(|_| rng.uniform(-bound, bound) as f32)
        .collect()
}

/// (weight, bias) of a layer with PyTorch's default initialisation: weight then bias drawn
/// from `rng` in that order.
pub fn layer(rng: &mut HostRng, weight_shape: &[usize], bias_len: usize) -> (Vec<f32>, Vec<f32>) {
    let fi = fan_in(weight_shape);
    let w = uniform_vec(
        rng,
        weight_shape.iter().product(),
        kaiming_uniform_bound(5f64.sqrt(), fi),
    );
    let bound = if fi > 0 {
        1.0 / (fi as f64).sqrt()
    } else {
        0.0
    };
    let b = uniform_vec(rng, bias_len, bound);
    (w, b)
}

/// nn.Linear(d_in, d_out): weight [d_out, d_in], bias [d_out].
pub fn linear(rng: &mut HostRng, d_in: usize, d_out: usize) -> (Vec<f32>, Vec<f32>) {
    layer(rng, &[d_out, d_in], d_out)
}

/// nn.Conv1d/2d: weight [C_out, C_in, k…], bias [C_out].
pub fn conv(rng: &mut HostRng, weight_shape: &[usize]) -> (Vec<f32>, Vec<f32>) {
    layer(rng, weight_shape, weight_shape[0])
}

/// nn.ConvTranspose1d/2d: weight [C_in, C_out, k…], bias [C_out].
pub fn conv_transpose(rng: &mut HostRng, weight_shape: &[usize]) -> (Vec<f32>, Vec<f32>) {
    layer(rng, weight_shape, weight_shape[1])
}
