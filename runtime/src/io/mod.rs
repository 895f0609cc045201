//! Reading and writing tensors: `.npy` (NumPy) and `.safetensors` (PyTorch `state_dict`s).

pub mod npy;
pub mod safetensors;
