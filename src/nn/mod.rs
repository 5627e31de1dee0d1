//! GPU ops of the models: each op checks its shapes and buffers and records
//! its kernels into a batch.

pub mod accum;
pub mod batchnorm;
pub mod conv1d;
pub mod conv2d;
pub mod dense;
pub mod elementwise;
pub mod init;
pub mod loss;
pub mod matmul;
pub mod optim;
pub mod pool1d;
pub mod reparam;
pub mod tune;

/// Activation fused into an op's output (and undone in its backward). Each op
/// takes the variants its shader has and rejects the others: conv1d and
/// conv-transpose1d all three; dense and the conv2d ops `None` and `Relu`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Act {
    #[default]
    None,
    Relu,
    Sigmoid,
}

impl Act {
    /// The shaders' ACT_* constant.
    pub(crate) fn code(self) -> u32 {
        match self {
            Act::None => 0,
            Act::Relu => 1,
            Act::Sigmoid => 2,
        }
    }
}
