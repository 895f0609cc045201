//! Debugging tools for the optimizer: [`bisect`] finds the first pass whose output diverges.

pub mod bisect;
