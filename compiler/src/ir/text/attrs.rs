//! The attribute table: every op's text name and attributes, in one place for printer and parser.
//!
//! [`OPS`] lists the ops the text form knows, by name, each with a template op. [`visit`] walks an
//! op's attributes in print order — `v.required("stride", &mut conv.stride)` — and three visitors
//! run over that single description: the printer's ([`print_attrs`]), the parser's ([`read_attrs`])
//! and one that lists the keys an op accepts (for error messages and activation arguments). Adding
//! an op is one line in [`OPS`] and one arm in [`visit`]; adding an attribute type is one
//! [`AttrType`] impl.
//!
//! Epilogue attributes of `conv2d` and `linear` are optional: `residual=true` (printed only when
//! set), `activation=relu` (an activation op written as a value, its attributes as positional
//! arguments: `leaky_relu(0.01)`, `gelu(tanh)`, `elu(1.0)`) and the `pool_*` group (the attributes
//! of `max_pool2d` with a `pool_` prefix, all present or all absent). The bias is no attribute: it
//! is the operand after the weight, present when there is one more operand than the rest need
//! ([`set_bias_from_operands`]).

use super::lexer::{Pos, TextError};
use kiln_runtime::ops::{
    Activation, Add, AvgPool2d, BatchNorm2d, Conv2d, Epilogue, Flatten, GeluApproximate,
    GlobalAvgPool2d, Linear, MaxPool2d, Op, Padding2d,
};

/// An attribute value as written, before it is given a type.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Value {
    /// Its first character.
    pub pos: Pos,
    /// Its source text (for "found '…'" in messages).
    pub text: String,
    /// Its shape.
    pub kind: ValueKind,
}

/// The syntactic forms of an attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ValueKind {
    /// `-?[0-9]+`; the digits are in [`Value::text`].
    Int,
    /// A number with a fraction or exponent; its text is in [`Value::text`].
    Float,
    /// A word such as `true`, `none`, `relu`, `inf`; the word is [`Value::text`].
    Word,
    /// `[v, …]`.
    List(Vec<Value>),
    /// `name(v, …)`: an activation with its arguments.
    Call(String, Vec<Value>),
}

/// One `key=value` as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Attr {
    /// The attribute's name.
    pub key: String,
    /// Where the name starts.
    pub key_pos: Pos,
    /// Its value.
    pub value: Value,
}

impl Value {
    /// "expected `what`, found '…'" at this value.
    fn expected(&self, what: &str) -> TextError {
        TextError {
            pos: self.pos,
            msg: format!("expected {what}, found '{}'", self.text),
        }
    }

    fn word(&self) -> Option<&str> {
        match self.kind {
            ValueKind::Word => Some(&self.text),
            _ => None,
        }
    }
}

/// A type an attribute can have: how it prints and how it reads back.
pub(super) trait AttrType: Sized {
    /// The value's text form.
    fn print(&self) -> String;
    /// The value written as `v`, or what is wrong with it (at the offending part of `v`).
    fn read(v: &Value) -> Result<Self, TextError>;
}

impl AttrType for usize {
    fn print(&self) -> String {
        self.to_string()
    }

    fn read(v: &Value) -> Result<usize, TextError> {
        if v.kind != ValueKind::Int || v.text.starts_with('-') {
            return Err(v.expected("a non-negative integer"));
        }
        v.text.parse().map_err(|_| TextError {
            pos: v.pos,
            msg: format!("integer '{}' is too large", v.text),
        })
    }
}

impl AttrType for f32 {
    /// Rust's shortest form that reads back to the same `f32` (`0.01`, `1e-5`, `1.0`, `NaN`, `-inf`).
    fn print(&self) -> String {
        format!("{self:?}")
    }

    fn read(v: &Value) -> Result<f32, TextError> {
        let number = match &v.kind {
            ValueKind::Int | ValueKind::Float => true,
            ValueKind::Word => matches!(v.text.as_str(), "inf" | "-inf" | "NaN"),
            _ => false,
        };
        if !number {
            return Err(v.expected("a number"));
        }
        v.text.parse().map_err(|_| v.expected("a number"))
    }
}

impl AttrType for bool {
    fn print(&self) -> String {
        self.to_string()
    }

    fn read(v: &Value) -> Result<bool, TextError> {
        match v.word() {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            _ => Err(v.expected("'true' or 'false'")),
        }
    }
}

/// `[a, b, …]`.
fn print_list(items: &[usize]) -> String {
    kiln_runtime::shape::fmt_shape(items)
}

/// A list of exactly `n` non-negative integers; `what` describes it for messages.
fn read_list(v: &Value, n: usize, what: &str) -> Result<Vec<usize>, TextError> {
    match &v.kind {
        ValueKind::List(items) if items.len() == n => items.iter().map(usize::read).collect(),
        _ => Err(v.expected(what)),
    }
}

impl<const N: usize> AttrType for [usize; N] {
    fn print(&self) -> String {
        print_list(self)
    }

    fn read(v: &Value) -> Result<[usize; N], TextError> {
        let items = read_list(v, N, &format!("a list of {N} integers"))?;
        let mut out = [0; N];
        out.copy_from_slice(&items);
        Ok(out)
    }
}

impl AttrType for Padding2d {
    fn print(&self) -> String {
        print_list(&[self.top, self.left, self.bottom, self.right])
    }

    fn read(v: &Value) -> Result<Padding2d, TextError> {
        match read_list(v, 4, "a list of 4 integers [top, left, bottom, right]")?[..] {
            [top, left, bottom, right] => Ok(Padding2d {
                top,
                left,
                bottom,
                right,
            }),
            _ => Err(v.expected("a list of 4 integers [top, left, bottom, right]")),
        }
    }
}

impl AttrType for GeluApproximate {
    fn print(&self) -> String {
        match self {
            GeluApproximate::None => "none",
            GeluApproximate::Tanh => "tanh",
        }
        .to_string()
    }

    fn read(v: &Value) -> Result<GeluApproximate, TextError> {
        match v.word() {
            Some("none") => Ok(GeluApproximate::None),
            Some("tanh") => Ok(GeluApproximate::Tanh),
            _ => Err(v.expected("'none' or 'tanh'")),
        }
    }
}

/// An activation as an attribute value is the activation op written as a value: its name, then its
/// attributes as positional arguments — `relu`, `leaky_relu(0.01)`, `gelu(tanh)`.
impl AttrType for Activation {
    fn print(&self) -> String {
        let args: Vec<String> = print_attrs(&Op::Activation(*self))
            .into_iter()
            .map(|(_, value)| value)
            .collect();
        if args.is_empty() {
            self.name().to_string()
        } else {
            format!("{}({})", self.name(), args.join(", "))
        }
    }

    fn read(v: &Value) -> Result<Activation, TextError> {
        let (name, args) = match &v.kind {
            ValueKind::Word => (v.text.as_str(), &[][..]),
            ValueKind::Call(name, args) => (name.as_str(), &args[..]),
            _ => return Err(v.expected(&activation_forms())),
        };
        let template = match template(name) {
            Some(op @ Op::Activation(_)) => op,
            _ => return Err(v.expected(&activation_forms())),
        };
        let keys = required_keys(&template);
        if args.len() != keys.len() {
            let takes = match keys.len() {
                0 => "no arguments".to_string(),
                1 => format!("1 argument ({})", keys.join(", ")),
                n => format!("{n} arguments ({})", keys.join(", ")),
            };
            return Err(TextError {
                pos: v.pos,
                msg: format!("activation {name} takes {takes}, got {}", args.len()),
            });
        }
        let attrs: Vec<Attr> = keys
            .into_iter()
            .zip(args)
            .map(|(key, value)| Attr {
                key,
                key_pos: value.pos,
                value: value.clone(),
            })
            .collect();
        match read_attrs(template, &attrs, v.pos)? {
            Op::Activation(a) => Ok(a),
            _ => Err(v.expected(&activation_forms())),
        }
    }
}

/// "an activation (relu, …, leaky_relu(negative_slope), …)", from the table.
fn activation_forms() -> String {
    let forms: Vec<String> = OPS
        .iter()
        .map(|(_, make)| make())
        .filter(|op| matches!(op, Op::Activation(_)))
        .map(|op| {
            let keys = required_keys(&op);
            if keys.is_empty() {
                op.name().to_string()
            } else {
                format!("{}({})", op.name(), keys.join(", "))
            }
        })
        .collect();
    format!("an activation ({})", forms.join(", "))
}

/// Walks an op's attributes; each visitor gives the walk its meaning (print, read, list keys).
pub(super) trait Visitor: Sized {
    /// An attribute the op always has; printed always, required when parsing.
    fn required<T: AttrType>(&mut self, key: &'static str, value: &mut T);
    /// A flag printed only when set; absent reads as `false`.
    fn flag(&mut self, key: &'static str, value: &mut bool);
    /// An attribute printed only when present; absent reads as `None`.
    fn optional<T: AttrType>(&mut self, key: &'static str, value: &mut Option<T>);
    /// A group of attributes named `{prefix}_{key}`, all present or all absent: `visit` walks the
    /// group's value, `make` makes one to fill in when parsing.
    fn group<T>(
        &mut self,
        prefix: &'static str,
        value: &mut Option<T>,
        make: fn() -> T,
        visit: fn(&mut T, &mut Self),
    );
}

/// Makes an op's template.
pub(super) type MakeOp = fn() -> Op;

/// The ops of the text form, by name, each with a template whose attribute values the parser
/// overwrites (every non-optional attribute must be given, so the template's values never show).
/// The order is the order of the "known ops" list in error messages.
pub(super) const OPS: &[(&str, MakeOp)] = &[
    ("conv2d", || {
        Op::Conv2d(Conv2d {
            stride: [1, 1],
            padding: Padding2d::default(),
            dilation: [1, 1],
            groups: 1,
            bias: false,
            epilogue: Epilogue::default(),
        })
    }),
    ("max_pool2d", || Op::MaxPool2d(max_pool_template())),
    ("avg_pool2d", || {
        Op::AvgPool2d(AvgPool2d {
            kernel: [1, 1],
            stride: [1, 1],
            padding: Padding2d::default(),
            ceil_mode: false,
            count_include_pad: true,
        })
    }),
    ("global_avg_pool2d", || Op::GlobalAvgPool2d(GlobalAvgPool2d)),
    ("relu", || Op::Activation(Activation::Relu)),
    ("sigmoid", || Op::Activation(Activation::Sigmoid)),
    ("tanh", || Op::Activation(Activation::Tanh)),
    ("leaky_relu", || {
        Op::Activation(Activation::LeakyRelu {
            negative_slope: 0.01,
        })
    }),
    ("gelu", || {
        Op::Activation(Activation::Gelu {
            approximate: GeluApproximate::None,
        })
    }),
    ("elu", || Op::Activation(Activation::Elu { alpha: 1.0 })),
    ("batch_norm", || Op::BatchNorm2d(BatchNorm2d { eps: 1e-5 })),
    ("add", || Op::Add(Add)),
    ("flatten", || Op::Flatten(Flatten { start_dim: 1 })),
    ("linear", || {
        Op::Linear(Linear {
            bias: false,
            epilogue: Epilogue::default(),
        })
    }),
];

fn max_pool_template() -> MaxPool2d {
    MaxPool2d {
        kernel: [1, 1],
        stride: [1, 1],
        padding: Padding2d::default(),
        dilation: [1, 1],
        ceil_mode: false,
    }
}

/// The attributes of every op, in print order. The match is exhaustive, so a new op cannot be
/// forgotten here.
pub(super) fn visit<V: Visitor>(op: &mut Op, v: &mut V) {
    match op {
        Op::Conv2d(c) => {
            v.required("stride", &mut c.stride);
            v.required("padding", &mut c.padding);
            v.required("dilation", &mut c.dilation);
            v.required("groups", &mut c.groups);
            visit_epilogue(&mut c.epilogue, v);
        }
        Op::MaxPool2d(p) => visit_max_pool(p, v),
        Op::AvgPool2d(p) => {
            v.required("kernel", &mut p.kernel);
            v.required("stride", &mut p.stride);
            v.required("padding", &mut p.padding);
            v.required("ceil_mode", &mut p.ceil_mode);
            v.required("count_include_pad", &mut p.count_include_pad);
        }
        Op::GlobalAvgPool2d(_) | Op::Add(_) => {}
        Op::Activation(a) => match a {
            Activation::Relu | Activation::Sigmoid | Activation::Tanh => {}
            Activation::LeakyRelu { negative_slope } => {
                v.required("negative_slope", negative_slope)
            }
            Activation::Gelu { approximate } => v.required("approximate", approximate),
            Activation::Elu { alpha } => v.required("alpha", alpha),
        },
        Op::BatchNorm2d(b) => v.required("eps", &mut b.eps),
        Op::Flatten(f) => v.required("start_dim", &mut f.start_dim),
        Op::Linear(l) => visit_epilogue(&mut l.epilogue, v),
    }
}

fn visit_max_pool<V: Visitor>(p: &mut MaxPool2d, v: &mut V) {
    v.required("kernel", &mut p.kernel);
    v.required("stride", &mut p.stride);
    v.required("padding", &mut p.padding);
    v.required("dilation", &mut p.dilation);
    v.required("ceil_mode", &mut p.ceil_mode);
}

/// The same for conv and linear: a pool epilogue on a linear is not rejected here but by its shape
/// rule, so that the text never silently drops what a graph holds.
fn visit_epilogue<V: Visitor>(e: &mut Epilogue, v: &mut V) {
    v.flag("residual", &mut e.residual);
    v.optional("activation", &mut e.activation);
    v.group("pool", &mut e.pool, max_pool_template, visit_max_pool);
}

/// The template op called `name`, if the text form knows it.
pub(super) fn template(name: &str) -> Option<Op> {
    OPS.iter().find(|(n, _)| *n == name).map(|(_, make)| make())
}

/// "unknown op 'x' (known ops: conv2d, …)".
pub(super) fn unknown_op(name: &str) -> String {
    let known: Vec<&str> = OPS.iter().map(|(n, _)| *n).collect();
    format!("unknown op '{name}' (known ops: {})", known.join(", "))
}

/// Conv and linear take their bias as an operand, not an attribute: it is there when the operands
/// outnumber input, weight and (with `residual=true`) the residual. A wrong count is left for the
/// op's shape rule to report.
pub(super) fn set_bias_from_operands(op: &mut Op, operands: usize) {
    match op {
        Op::Conv2d(c) => c.bias = operands > 2 + usize::from(c.epilogue.residual),
        Op::Linear(l) => l.bias = operands > 2 + usize::from(l.epilogue.residual),
        _ => {}
    }
}

/// Prints through [`visit`]: `(key, value)` pairs in order.
struct Printer {
    prefix: String,
    out: Vec<(String, String)>,
}

impl Visitor for Printer {
    fn required<T: AttrType>(&mut self, key: &'static str, value: &mut T) {
        self.out
            .push((format!("{}{key}", self.prefix), value.print()));
    }

    fn flag(&mut self, key: &'static str, value: &mut bool) {
        if *value {
            self.required(key, value);
        }
    }

    fn optional<T: AttrType>(&mut self, key: &'static str, value: &mut Option<T>) {
        if let Some(value) = value {
            self.required(key, value);
        }
    }

    fn group<T>(
        &mut self,
        prefix: &'static str,
        value: &mut Option<T>,
        _make: fn() -> T,
        visit: fn(&mut T, &mut Self),
    ) {
        if let Some(value) = value {
            let outer = std::mem::replace(&mut self.prefix, format!("{prefix}_"));
            visit(value, self);
            self.prefix = outer;
        }
    }
}

/// The attributes of `op` as `(key, value text)` pairs, in print order.
pub(super) fn print_attrs(op: &Op) -> Vec<(String, String)> {
    let mut printer = Printer {
        prefix: String::new(),
        out: Vec::new(),
    };
    // The visitor API takes `&mut` so that one walk serves reading too; printing changes nothing.
    visit(&mut op.clone(), &mut printer);
    printer.out
}

/// Lists the keys an op accepts: `(key, required)`, the optional ones flagged `false`.
struct Keys {
    prefix: String,
    in_group: bool,
    keys: Vec<(String, bool)>,
}

impl Visitor for Keys {
    fn required<T: AttrType>(&mut self, key: &'static str, _value: &mut T) {
        self.keys
            .push((format!("{}{key}", self.prefix), !self.in_group));
    }

    fn flag(&mut self, key: &'static str, _value: &mut bool) {
        self.keys.push((format!("{}{key}", self.prefix), false));
    }

    fn optional<T: AttrType>(&mut self, key: &'static str, _value: &mut Option<T>) {
        self.keys.push((format!("{}{key}", self.prefix), false));
    }

    fn group<T>(
        &mut self,
        prefix: &'static str,
        _value: &mut Option<T>,
        make: fn() -> T,
        visit: fn(&mut T, &mut Self),
    ) {
        let outer = std::mem::replace(&mut self.prefix, format!("{prefix}_"));
        self.in_group = true;
        visit(&mut make(), self);
        self.in_group = false;
        self.prefix = outer;
    }
}

fn keys(op: &Op) -> Vec<(String, bool)> {
    let mut lister = Keys {
        prefix: String::new(),
        in_group: false,
        keys: Vec::new(),
    };
    visit(&mut op.clone(), &mut lister);
    lister.keys
}

fn required_keys(op: &Op) -> Vec<String> {
    keys(op)
        .into_iter()
        .filter(|(_, required)| *required)
        .map(|(k, _)| k)
        .collect()
}

/// Reads through [`visit`]: fills the op's fields from the written attributes, noting the first
/// bad value, the required keys not given, and which written attributes were used.
struct Reader<'a> {
    op: &'static str,
    attrs: &'a [Attr],
    used: Vec<bool>,
    prefix: String,
    missing: Vec<String>,
    error: Option<TextError>,
}

impl<'a> Reader<'a> {
    /// The value written for `key` (with the current prefix), marking it used.
    fn take(&mut self, key: &str) -> Option<&'a Value> {
        let key = format!("{}{key}", self.prefix);
        let i = self.attrs.iter().position(|a| a.key == key)?;
        if let Some(used) = self.used.get_mut(i) {
            *used = true;
        }
        self.attrs.get(i).map(|a| &a.value)
    }

    /// Reads `v` as a `T`, keeping the first error (with the attribute and op named).
    fn read<T: AttrType>(&mut self, key: &str, v: &Value) -> Option<T> {
        match T::read(v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error.get_or_insert(TextError {
                    pos: e.pos,
                    msg: format!("attribute '{}{key}' of {}: {}", self.prefix, self.op, e.msg),
                });
                None
            }
        }
    }
}

impl Visitor for Reader<'_> {
    fn required<T: AttrType>(&mut self, key: &'static str, value: &mut T) {
        match self.take(key) {
            Some(v) => {
                if let Some(t) = self.read(key, v) {
                    *value = t;
                }
            }
            None => self.missing.push(format!("{}{key}", self.prefix)),
        }
    }

    fn flag(&mut self, key: &'static str, value: &mut bool) {
        if let Some(v) = self.take(key) {
            if let Some(t) = self.read(key, v) {
                *value = t;
            }
        }
    }

    fn optional<T: AttrType>(&mut self, key: &'static str, value: &mut Option<T>) {
        if let Some(v) = self.take(key) {
            if let Some(t) = self.read(key, v) {
                *value = Some(t);
            }
        }
    }

    fn group<T>(
        &mut self,
        prefix: &'static str,
        value: &mut Option<T>,
        make: fn() -> T,
        visit: fn(&mut T, &mut Self),
    ) {
        let prefix = format!("{prefix}_");
        if !self.attrs.iter().any(|a| a.key.starts_with(&prefix)) {
            return;
        }
        let outer = std::mem::replace(&mut self.prefix, prefix);
        let mut group = make();
        visit(&mut group, self);
        self.prefix = outer;
        *value = Some(group);
    }
}

/// Fills `template`'s attributes from `attrs`. Errors, in this order: a duplicate key, a bad value,
/// an unknown key (often a misspelt required one, so it is reported before the missing one), a
/// missing key (at `op_pos`).
pub(super) fn read_attrs(template: Op, attrs: &[Attr], op_pos: Pos) -> Result<Op, TextError> {
    let name = template.name();
    for (i, a) in attrs.iter().enumerate() {
        if let Some(first) = attrs[..i].iter().find(|b| b.key == a.key) {
            return Err(TextError {
                pos: a.key_pos,
                msg: format!(
                    "duplicate attribute '{}' of {name} (first given at {})",
                    a.key, first.key_pos
                ),
            });
        }
    }
    let mut op = template;
    let mut reader = Reader {
        op: name,
        attrs,
        used: vec![false; attrs.len()],
        prefix: String::new(),
        missing: Vec::new(),
        error: None,
    };
    visit(&mut op, &mut reader);
    if let Some(e) = reader.error {
        return Err(e);
    }
    if let Some(unknown) = attrs.iter().zip(&reader.used).find(|(_, used)| !**used) {
        let attr = unknown.0;
        return Err(TextError {
            pos: attr.key_pos,
            msg: format!(
                "unknown attribute '{}' of {name} ({})",
                attr.key,
                known(&op)
            ),
        });
    }
    let quoted: Vec<String> = reader.missing.iter().map(|k| format!("'{k}'")).collect();
    match quoted.len() {
        0 => Ok(op),
        n => Err(TextError {
            pos: op_pos,
            msg: format!(
                "missing attribute{} {} of {name}",
                if n == 1 { "" } else { "s" },
                quoted.join(", ")
            ),
        }),
    }
}

/// "expected stride, padding; optional residual, …" or "it takes none".
fn known(op: &Op) -> String {
    let keys = keys(op);
    let list = |required: bool| -> Vec<String> {
        keys.iter()
            .filter(|(_, r)| *r == required)
            .map(|(k, _)| k.clone())
            .collect()
    };
    let (required, optional) = (list(true), list(false));
    match (required.is_empty(), optional.is_empty()) {
        (true, true) => "it takes none".to_string(),
        (false, true) => format!("expected {}", required.join(", ")),
        (true, false) => format!("optional {}", optional.join(", ")),
        (false, false) => format!(
            "expected {}; optional {}",
            required.join(", "),
            optional.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_match_the_ops() {
        for (name, make) in OPS {
            assert_eq!(make().name(), *name);
        }
    }

    #[test]
    fn conv_attributes_in_print_order() {
        let op = Op::Conv2d(Conv2d {
            stride: [2, 1],
            padding: Padding2d {
                top: 1,
                left: 2,
                bottom: 3,
                right: 4,
            },
            dilation: [1, 2],
            groups: 4,
            bias: true,
            epilogue: Epilogue {
                residual: true,
                activation: Some(Activation::LeakyRelu {
                    negative_slope: 0.01,
                }),
                pool: Some(MaxPool2d {
                    kernel: [2, 2],
                    stride: [2, 2],
                    padding: Padding2d::default(),
                    dilation: [1, 1],
                    ceil_mode: false,
                }),
            },
        });
        let printed: Vec<String> = print_attrs(&op)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            printed.join(", "),
            "stride=[2, 1], padding=[1, 2, 3, 4], dilation=[1, 2], groups=4, residual=true, \
             activation=leaky_relu(0.01), pool_kernel=[2, 2], pool_stride=[2, 2], \
             pool_padding=[0, 0, 0, 0], pool_dilation=[1, 1], pool_ceil_mode=false"
        );
    }

    #[test]
    fn activations_print_as_values() {
        let cases = [
            (Activation::Relu, "relu"),
            (
                Activation::Gelu {
                    approximate: GeluApproximate::Tanh,
                },
                "gelu(tanh)",
            ),
            (Activation::Elu { alpha: 1.0 }, "elu(1.0)"),
            (
                Activation::LeakyRelu {
                    negative_slope: 1e-5,
                },
                "leaky_relu(1e-5)",
            ),
        ];
        for (a, text) in cases {
            assert_eq!(a.print(), text);
        }
    }

    #[test]
    fn known_keys_of_conv_and_relu() {
        let conv = template("conv2d").unwrap();
        assert_eq!(
            known(&conv),
            "expected stride, padding, dilation, groups; optional residual, activation, \
             pool_kernel, pool_stride, pool_padding, pool_dilation, pool_ceil_mode"
        );
        assert_eq!(known(&template("relu").unwrap()), "it takes none");
    }
}
