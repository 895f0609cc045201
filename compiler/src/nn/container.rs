//! `nn.Sequential`: children named `0`, `1`, … run one after the other.

use crate::error::Result;
use crate::ir::graph::ValueId;
use crate::nn::module::Module;
use crate::nn::repr::display_as_repr;
use crate::nn::tracer::Tracer;

/// `nn.Sequential(m0, m1, …)`: feeds each child's output to the next. Children are named by their
/// position, so parameters are `0.weight`, `features.2.bias`, … as in PyTorch.
///
/// ```
/// use kiln::nn::{Conv2d, ReLU, Sequential};
/// let features = Sequential::new().append(Conv2d::new(3, 16, 3).padding(1)).append(ReLU::new());
/// assert_eq!(
///     features.to_string(),
///     "Sequential(\n  (0): Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n  (1): ReLU()\n)"
/// );
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty container (it traces as the identity, like PyTorch's).
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// A container of the given layers, in order.
    pub fn from_layers(layers: Vec<Box<dyn Module>>) -> Sequential {
        Sequential { layers }
    }

    /// Appends a layer (named by its position), like `Sequential.append`.
    pub fn append(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn type_name(&self) -> &str {
        "Sequential"
    }
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, m)| (i.to_string(), m.as_ref()))
            .collect()
    }
    fn forward(&self, t: &mut Tracer, mut x: ValueId) -> Result<ValueId> {
        for (i, layer) in self.layers.iter().enumerate() {
            x = t.call(&i.to_string(), layer.as_ref(), x)?;
        }
        Ok(x)
    }
}

display_as_repr!(Sequential);
