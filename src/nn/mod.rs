pub mod matmul;
pub mod dense;
pub mod elementwise;
pub mod loss;
pub mod reparam;
pub mod init;
pub mod optim;
