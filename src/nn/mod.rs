pub mod conv2d;
pub mod dense;
pub mod elementwise;
pub mod matmul;
