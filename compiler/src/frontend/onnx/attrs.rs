//! [`NodeRef`]: one ONNX node with typed access to its attributes and operands, and the errors that
//! name it.

use super::error::OnnxError;
use super::proto::attribute_proto::AttributeType;
use super::proto::{AttributeProto, NodeProto, TensorProto};

/// Largest stride, dilation, padding or kernel size accepted from an attribute. Real models use
/// single digits; the cap keeps shape arithmetic on values read from a file far from overflow.
pub(crate) const MAX_ATTR: usize = 1 << 16;

/// A node of the ONNX graph, with the name its errors use.
#[derive(Clone, Copy)]
pub(crate) struct NodeRef<'a> {
    /// The node.
    pub proto: &'a NodeProto,
    /// Its name, else its first output, else `#index`.
    pub name: &'a str,
    /// Its op type.
    pub op: &'a str,
}

impl<'a> NodeRef<'a> {
    /// Wraps node `proto`; `fallback` names it when it has neither a name nor an output.
    pub fn new(proto: &'a NodeProto, fallback: &'a str) -> NodeRef<'a> {
        let name = match proto.name.as_deref() {
            Some(n) if !n.is_empty() => n,
            _ => proto
                .output
                .first()
                .map(String::as_str)
                .filter(|o| !o.is_empty())
                .unwrap_or(fallback),
        };
        NodeRef {
            proto,
            name,
            op: proto.op_type.as_deref().unwrap_or(""),
        }
    }

    /// Whether the node's op is from the default ONNX domain (`""` or `ai.onnx`).
    pub fn in_default_domain(&self) -> bool {
        matches!(
            self.proto.domain.as_deref(),
            None | Some("") | Some("ai.onnx")
        )
    }

    /// Operand `i`, or `None` when it is absent (past the end, or the empty name ONNX uses for an
    /// omitted optional operand).
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.proto
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Operand `i`, which the op requires.
    pub fn required_input(&self, i: usize) -> Result<&'a str, OnnxError> {
        self.input(i)
            .ok_or_else(|| self.invalid(format!("operand {i} is missing")))
    }

    /// Result `i`, or `None` when absent.
    pub fn output(&self, i: usize) -> Option<&'a str> {
        self.proto
            .output
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The node's (first) result, which every node must have.
    pub fn output0(&self) -> Result<&'a str, OnnxError> {
        self.output(0)
            .ok_or_else(|| self.invalid("the node has no result"))
    }

    /// An error for a valid node Kiln cannot import in this form.
    pub fn unsupported(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            node: self.name.to_string(),
            op: self.op.to_string(),
            msg: msg.into(),
        }
    }

    /// An error for a node that is not valid ONNX.
    pub fn invalid(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::InvalidNode {
            node: self.name.to_string(),
            op: self.op.to_string(),
            msg: msg.into(),
        }
    }

    /// An error for attribute `attribute`.
    pub fn attr_error(&self, attribute: &str, msg: impl Into<String>) -> OnnxError {
        OnnxError::Attribute {
            node: self.name.to_string(),
            op: self.op.to_string(),
            attribute: attribute.to_string(),
            msg: msg.into(),
        }
    }

    /// The attribute called `name`, checked to be of type `ty` (an attribute without a type, as
    /// in very old files, is accepted when the field for `ty` is set).
    fn attr(&self, name: &str, ty: AttributeType) -> Result<Option<&'a AttributeProto>, OnnxError> {
        let Some(a) = self
            .proto
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
        else {
            return Ok(None);
        };
        let declared = a.r#type.and_then(|t| AttributeType::try_from(t).ok());
        let ok = match declared {
            Some(AttributeType::Undefined) | None => match ty {
                AttributeType::Int => a.i.is_some(),
                AttributeType::Float => a.f.is_some(),
                AttributeType::String => a.s.is_some(),
                AttributeType::Tensor => a.t.is_some(),
                AttributeType::Ints => true,
                AttributeType::Floats => true,
                _ => false,
            },
            Some(t) => t == ty,
        };
        if !ok {
            return Err(self.attr_error(
                name,
                format!(
                    "expected {}, got {}",
                    ty.as_str_name(),
                    declared.map_or("no value", |t| t.as_str_name())
                ),
            ));
        }
        Ok(Some(a))
    }

    /// Whether the node has an attribute called `name`.
    pub fn has_attr(&self, name: &str) -> bool {
        self.proto
            .attribute
            .iter()
            .any(|a| a.name.as_deref() == Some(name))
    }

    /// An `INT` attribute, or `default`.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self
            .attr(name, AttributeType::Int)?
            .and_then(|a| a.i)
            .unwrap_or(default))
    }

    /// An `INT` attribute that must be 0 or 1, or `default`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, OnnxError> {
        match self.int(name, i64::from(default))? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.attr_error(name, format!("expected 0 or 1, got {v}"))),
        }
    }

    /// A `FLOAT` attribute, or `default`.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self
            .attr(name, AttributeType::Float)?
            .and_then(|a| a.f)
            .unwrap_or(default))
    }

    /// An `INTS` attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, OnnxError> {
        Ok(self
            .attr(name, AttributeType::Ints)?
            .map(|a| a.ints.as_slice()))
    }

    /// A `FLOATS` attribute, if present.
    pub fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, OnnxError> {
        Ok(self
            .attr(name, AttributeType::Floats)?
            .map(|a| a.floats.as_slice()))
    }

    /// A `STRING` attribute (as UTF-8, lossily), if present.
    pub fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        Ok(self
            .attr(name, AttributeType::String)?
            .and_then(|a| a.s.as_deref())
            .map(|s| String::from_utf8_lossy(s).into_owned()))
    }

    /// A `TENSOR` attribute, if present.
    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, OnnxError> {
        Ok(self
            .attr(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }

    /// A two-element `INTS` attribute of values in `min..=MAX_ATTR` (strides, dilations, kernel
    /// sizes), or `default`.
    pub fn pair(
        &self,
        name: &str,
        default: [usize; 2],
        min: usize,
    ) -> Result<[usize; 2], OnnxError> {
        let Some(v) = self.ints(name)? else {
            return Ok(default);
        };
        let conv = |x: i64| {
            usize::try_from(x)
                .ok()
                .filter(|x| (min..=MAX_ATTR).contains(x))
        };
        match v {
            [a, b] => match (conv(*a), conv(*b)) {
                (Some(a), Some(b)) => Ok([a, b]),
                _ => Err(self.attr_error(
                    name,
                    format!("values must be in {min}..={MAX_ATTR}, got {v:?}"),
                )),
            },
            _ => Err(self.attr_error(name, format!("expected 2 values (a 2-d op), got {v:?}"))),
        }
    }
}
