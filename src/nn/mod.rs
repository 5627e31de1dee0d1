pub mod matmul;
pub mod conv2d;
