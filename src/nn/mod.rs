pub mod matmul;
pub mod dense;
pub mod elementwise;
