//! Front ends that import models from other formats into a [`Graph`](crate::Graph).
