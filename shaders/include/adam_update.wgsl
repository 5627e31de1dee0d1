// The body of the Adam entry points (optim.wgsl adam, optim4.wgsl adam4), written once
// so the two cannot drift apart: element i of the slots, a parameter or a vec4 of them
// (WGSL's scalar-vector arithmetic serves both). Included where `i` is defined.
    let w = param[i];
    let g = grad[i] + p.weight_decay * w;
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = w - p.step_size * mi / (sqrt(vi) / p.bc2_sqrt + p.eps);
