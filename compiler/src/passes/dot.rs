//! `kiln compile --emit dot`: the optimized graph in Graphviz form. Each op is one box listing its
//! fused epilogue (a fused conv is one box: `conv2d 3x3` / `+ bias` / `+ relu` / `+ max_pool2d 2x2`);
//! edges carry the shape of the value they carry. Parameters are folded into their op's box (as its
//! weight's shape) so the picture shows the dataflow, not every tensor.
//!
//! ```text
//! digraph "simple_cnn" {
//!   n0 [label="%x\ninput", shape=ellipse];
//!   n5 [label="%conv1\nconv2d 3x3, stride 1, pad 1\nweight [32, 3, 3, 3]\n+ bias\n+ relu\n+ max_pool2d 2x2, stride 2"];
//!   n0 -> n5 [label="[1, 3, 32, 32]"];
//!   …
//! }
//! ```

use crate::ir::graph::{Graph, NodeKind, ValueId};
use kiln_runtime::ops::{Activation, Epilogue, MaxPool2d, Op, Padding2d};
use kiln_runtime::shape::fmt_shape;
use std::fmt::Write;

/// The Graphviz `digraph` of `graph`.
pub fn to_dot(graph: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", quote(&graph.name));
    out.push_str("  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n  edge [fontname=\"monospace\", fontsize=9];\n");
    let order = graph
        .topo_order()
        .unwrap_or_else(|_| graph.values().collect());
    let id = |v: ValueId| format!("n{}", v.index());
    for &v in &order {
        let node = graph.node(v);
        match &node.kind {
            NodeKind::Input => {
                let _ = writeln!(
                    out,
                    "  {} [label={}, shape=ellipse];",
                    id(v),
                    quote(&format!("%{}\ninput", node.name))
                );
            }
            NodeKind::Param(_) => {}
            NodeKind::Op(op) => {
                let mut lines = vec![format!("%{}", node.name), describe(graph, v, op)];
                lines.extend(epilogue_lines(op));
                let _ = writeln!(out, "  {} [label={}];", id(v), quote(&lines.join("\n")));
            }
        }
    }
    for &v in &order {
        let Some(op) = graph.op(v) else { continue };
        let names = op.operand_names();
        for (slot, o) in graph.operands(v).into_iter().enumerate() {
            if matches!(graph.node(o).kind, NodeKind::Param(_)) {
                continue;
            }
            let role = match names.get(slot) {
                Some(&"residual") => "residual ",
                _ => "",
            };
            let label = format!("{role}{}", fmt_shape(&graph.ty(o).shape));
            let _ = writeln!(out, "  {} -> {} [label={}];", id(o), id(v), quote(&label));
        }
    }
    for (i, &o) in graph.outputs().iter().enumerate() {
        if !graph.contains(o) {
            continue;
        }
        let _ = writeln!(
            out,
            "  out{i} [label={}, shape=ellipse];\n  {} -> out{i} [label={}];",
            quote(&format!("return {i}")),
            id(o),
            quote(&fmt_shape(&graph.ty(o).shape))
        );
    }
    out.push_str("}\n");
    out
}

/// The op's own line: its name and main attributes (and its weight's shape).
fn describe(graph: &Graph, v: ValueId, op: &Op) -> String {
    let weight = || {
        graph
            .operands(v)
            .get(1)
            .map(|&w| format!("\nweight {}", fmt_shape(&graph.ty(w).shape)))
            .unwrap_or_default()
    };
    match op {
        Op::Conv2d(c) => {
            let k = graph
                .operands(v)
                .get(1)
                .map(|&w| graph.ty(w).shape.clone())
                .unwrap_or_default();
            let kernel = match k[..] {
                [_, _, kh, kw] => format!(" {kh}x{kw}"),
                _ => String::new(),
            };
            let mut s = format!(
                "conv2d{kernel}, stride {}, pad {}",
                pair(c.stride),
                padding(&c.padding)
            );
            if c.dilation != [1, 1] {
                let _ = write!(s, ", dilation {}", pair(c.dilation));
            }
            if c.groups != 1 {
                let _ = write!(s, ", groups {}", c.groups);
            }
            s + &weight()
        }
        Op::Linear(_) => format!("linear{}", weight()),
        Op::MaxPool2d(p) => pool_text(p),
        Op::AvgPool2d(p) => format!(
            "avg_pool2d {}, stride {}, pad {}",
            kernel(p.kernel),
            pair(p.stride),
            padding(&p.padding)
        ),
        Op::Activation(a) => activation_text(a),
        Op::Flatten(f) => format!("flatten from dim {}", f.start_dim),
        other => other.name().to_string(),
    }
}

/// `+ bias`, `+ residual`, `+ relu`, `+ max_pool2d …`, in the order the epilogue applies them.
fn epilogue_lines(op: &Op) -> Vec<String> {
    let (bias, epi): (bool, &Epilogue) = match op {
        Op::Conv2d(c) => (c.bias, &c.epilogue),
        Op::Linear(l) => (l.bias, &l.epilogue),
        _ => return Vec::new(),
    };
    let mut lines = Vec::new();
    if bias {
        lines.push("+ bias".to_string());
    }
    if epi.residual {
        lines.push("+ residual".to_string());
    }
    if let Some(a) = &epi.activation {
        lines.push(format!("+ {}", activation_text(a)));
    }
    if let Some(p) = &epi.pool {
        lines.push(format!("+ {}", pool_text(p)));
    }
    lines
}

fn activation_text(a: &Activation) -> String {
    match a {
        Activation::LeakyRelu { negative_slope } => format!("leaky_relu({negative_slope:?})"),
        Activation::Elu { alpha } => format!("elu({alpha:?})"),
        Activation::Gelu { approximate } => format!("gelu({approximate:?})").to_lowercase(),
        other => other.name().to_string(),
    }
}

fn pool_text(p: &MaxPool2d) -> String {
    let mut s = format!(
        "max_pool2d {}, stride {}, pad {}",
        kernel(p.kernel),
        pair(p.stride),
        padding(&p.padding)
    );
    if p.dilation != [1, 1] {
        let _ = write!(s, ", dilation {}", pair(p.dilation));
    }
    if p.ceil_mode {
        s.push_str(", ceil_mode");
    }
    s
}

fn kernel([h, w]: [usize; 2]) -> String {
    format!("{h}x{w}")
}

/// `2` when both are equal, else `(2, 1)`.
fn pair([a, b]: [usize; 2]) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("({a}, {b})")
    }
}

fn padding(p: &Padding2d) -> String {
    if p.is_symmetric() {
        pair([p.top, p.left])
    } else {
        format!("[{}, {}, {}, {}]", p.top, p.left, p.bottom, p.right)
    }
}

/// A Graphviz double-quoted string; newlines become `\n` line breaks.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
