pub mod accum;
pub mod batchnorm;
pub mod conv1d;
pub mod conv2d;
pub mod dense;
pub mod elementwise;
pub mod matmul;
pub mod pool1d;
