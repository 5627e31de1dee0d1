// C = A·B + beta·C over `batch` matrices (mirrors `MatmulParams` in src/nn/matmul.rs):
// element (i, j) of A at a_off + bi·a_bs + i·a_rs + j·a_cs, likewise B and C.
struct Params {
    m: u32, n: u32, k: u32, batch: u32,
    a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
    a_bs: u32, b_bs: u32, c_bs: u32, c_rs: u32,
    a_off: u32, b_off: u32, c_off: u32, beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
