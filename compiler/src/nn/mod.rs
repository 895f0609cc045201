//! A builder mirroring `torch.nn`: modules with named children that print like PyTorch's
//! `print(model)` and trace into a [`Graph`](crate::Graph) whose parameters carry `state_dict` names.
