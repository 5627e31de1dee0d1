// The optimizer step (mirrors `Params` in src/nn/optim.rs).
struct Params {
    n: u32,
    flags: u32,          // SGD: bit 0 momentum, bit 1 first step, bit 2 Nesterov
    lr: f32,
    beta1: f32,          // Adam β1, SGD momentum μ
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,      // Adam: lr / (1 − β1^t)
    bc2_sqrt: f32,       // Adam: sqrt(1 − β2^t)
    dampening: f32,      // SGD
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
