//! PyTorch's default parameter initialisation (`reset_parameters()`), drawn from Kiln's seeded
//! [`Rng`]: the distributions match PyTorch's, the numbers do not (a different generator).

use kiln_runtime::rng::Rng;
use kiln_runtime::{RuntimeError, Tensor};

/// How a parameter is filled when a model is traced with initialisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Uniform in `[-bound, bound)`.
    Uniform {
        /// Half-width of the interval.
        bound: f32,
    },
    /// Every element equal to this value (`init.ones_`, `init.zeros_`).
    Constant(f32),
}

impl Init {
    /// A tensor of `shape` drawn from this distribution (constants draw nothing from `rng`).
    pub fn sample(&self, shape: &[usize], rng: &mut Rng) -> Result<Tensor, RuntimeError> {
        match *self {
            Init::Uniform { bound } => {
                let mut t = Tensor::zeros(shape)?;
                t.data_mut()
                    .iter_mut()
                    .for_each(|v| *v = rng.uniform(-bound, bound));
                Ok(t)
            }
            Init::Constant(c) => Tensor::full(shape, c),
        }
    }
}

/// The default initialisation of a Conv2d or Linear weight *and* bias with `fan_in` inputs per
/// output: `U(−1/√fan_in, 1/√fan_in)`.
///
/// PyTorch's weight uses `kaiming_uniform_(a=√5)`: gain = √(2 / (1 + a²)) = √(1/3), and
/// bound = √3 · gain / √fan_in = 1/√fan_in; its bias uses 1/√fan_in directly. So both share one
/// bound. A `fan_in` of 0 (an empty layer) gives bound 0, as PyTorch skips the bias init then.
pub fn default_uniform(fan_in: usize) -> Init {
    let bound = if fan_in == 0 {
        0.0
    } else {
        (1.0 / (fan_in as f64).sqrt()) as f32
    };
    Init::Uniform { bound }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaiming_bound_equals_one_over_sqrt_fan_in() {
        // Conv2d(3, 32, 3): fan_in = 3·3·3 = 27, bound = 1/√27 ≈ 0.19245.
        let Init::Uniform { bound } = default_uniform(27) else {
            panic!("expected a uniform init");
        };
        assert!((bound - 0.192_450_09).abs() < 1e-6);
        // The kaiming formula with a = √5 gives the same value.
        let gain = (2.0f64 / (1.0 + 5.0)).sqrt();
        let kaiming = 3.0f64.sqrt() * gain / 27.0f64.sqrt();
        assert!((bound as f64 - kaiming).abs() < 1e-7);
    }

    #[test]
    fn samples_stay_in_bounds_and_constants_are_constant() {
        let mut rng = Rng::new(3);
        let t = Init::Uniform { bound: 0.5 }
            .sample(&[10, 10], &mut rng)
            .unwrap();
        assert!(t.data().iter().all(|v| (-0.5..0.5).contains(v)));
        let c = Init::Constant(1.0).sample(&[4], &mut rng).unwrap();
        assert_eq!(c.data(), &[1.0; 4]);
    }
}
