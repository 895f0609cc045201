//! Example models shared by the examples and the tests: the seed tutorial's `SimpleCNN` and a
//! residual block.

use crate::error::Result;
use crate::ir::graph::ValueId;
use crate::nn::activation::ReLU;
use crate::nn::conv::Conv2d;
use crate::nn::module::Module;
use crate::nn::pool::MaxPool2d;
use crate::nn::repr::display_as_repr;
use crate::nn::tracer::Tracer;

/// The seed tutorial's `SimpleCNN`; on a `[1, 3, 32, 32]` image it gives `[1, 64, 8, 8]`.
///
/// ```python
/// class SimpleCNN(nn.Module):
///     def __init__(self):
///         super(SimpleCNN, self).__init__()
///         self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
///         self.relu1 = nn.ReLU()
///         self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
///         self.relu2 = nn.ReLU()
///         self.pool = nn.MaxPool2d(2, 2)
///
///     def forward(self, x):
///         x = self.conv1(x)
///         x = self.relu1(x)
///         x = self.pool(x)
///         x = self.conv2(x)
///         x = self.relu2(x)
///         x = self.pool(x)
///         return x
/// ```
#[derive(Debug, Clone)]
pub struct SimpleCnn {
    /// 3 → 32 channels, 3×3, padding 1.
    pub conv1: Conv2d,
    /// After `conv1`.
    pub relu1: ReLU,
    /// 32 → 64 channels, 3×3, padding 1.
    pub conv2: Conv2d,
    /// After `conv2`.
    pub relu2: ReLU,
    /// 2×2, stride 2; used twice.
    pub pool: MaxPool2d,
}

impl SimpleCnn {
    /// The tutorial's layer sizes.
    pub fn new() -> SimpleCnn {
        SimpleCnn {
            conv1: Conv2d::new(3, 32, 3).padding(1),
            relu1: ReLU::new(),
            conv2: Conv2d::new(32, 64, 3).padding(1),
            relu2: ReLU::new(),
            pool: MaxPool2d::new(2).stride(2),
        }
    }
}

impl Default for SimpleCnn {
    fn default() -> SimpleCnn {
        SimpleCnn::new()
    }
}

impl Module for SimpleCnn {
    fn type_name(&self) -> &str {
        "SimpleCNN"
    }
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("conv1".into(), &self.conv1),
            ("relu1".into(), &self.relu1),
            ("conv2".into(), &self.conv2),
            ("relu2".into(), &self.relu2),
            ("pool".into(), &self.pool),
        ]
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let x = t.call("conv1", &self.conv1, x)?;
        let x = t.call("relu1", &self.relu1, x)?;
        let x = t.call("pool", &self.pool, x)?;
        let x = t.call("conv2", &self.conv2, x)?;
        let x = t.call("relu2", &self.relu2, x)?;
        t.call("pool", &self.pool, x)
    }
}

/// A residual block without normalisation: `relu(conv2(relu(conv1(x))) + x)`, channels and
/// spatial size preserved. The ReLU module runs twice, so the trace has `relu` and `relu_1`, and
/// the addition is the functional op `add`.
///
/// ```python
/// class ResidualBlock(nn.Module):
///     def __init__(self, channels):
///         super().__init__()
///         self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
///         self.relu = nn.ReLU()
///         self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
///
///     def forward(self, x):
///         out = self.relu(self.conv1(x))
///         out = self.conv2(out)
///         return self.relu(out + x)
/// ```
#[derive(Debug, Clone)]
pub struct ResidualBlock {
    /// channels → channels, 3×3, padding 1.
    pub conv1: Conv2d,
    /// Used after `conv1` and after the addition.
    pub relu: ReLU,
    /// channels → channels, 3×3, padding 1.
    pub conv2: Conv2d,
}

impl ResidualBlock {
    /// A block on `channels` channels.
    pub fn new(channels: usize) -> ResidualBlock {
        ResidualBlock {
            conv1: Conv2d::new(channels, channels, 3).padding(1),
            relu: ReLU::new(),
            conv2: Conv2d::new(channels, channels, 3).padding(1),
        }
    }
}

impl Module for ResidualBlock {
    fn type_name(&self) -> &str {
        "ResidualBlock"
    }
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("conv1".into(), &self.conv1),
            ("relu".into(), &self.relu),
            ("conv2".into(), &self.conv2),
        ]
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let out = t.call("conv1", &self.conv1, x)?;
        let out = t.call("relu", &self.relu, out)?;
        let out = t.call("conv2", &self.conv2, out)?;
        let out = t.add(out, x)?;
        t.call("relu", &self.relu, out)
    }
}

display_as_repr!(SimpleCnn, ResidualBlock);
