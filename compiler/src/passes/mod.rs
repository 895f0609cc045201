//! The optimizer: passes over the graph and the pass manager that runs them.
