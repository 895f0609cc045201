//! Recognising GELU written out in elementary ops, as exporters do at opsets below 20 (which have no
//! `Gelu` op), so that it imports as one `gelu`.
//!
//! The exact form `0.5·x·(1 + erf(x/√2))`, as `torch.onnx` (opset 17) writes `nn.GELU()`:
//!
//! ```text
//! d = Div(x, 1.4142135)      or Mul(x, 0.70710677)
//! e = Erf(d)
//! a = Add(e, 1.0)
//! m = Mul(x, a)
//! y = Mul(m, 0.5)            the tail: see below
//! ```
//!
//! The tanh form `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, as it writes
//! `nn.GELU(approximate='tanh')`:
//!
//! ```text
//! s = Mul(x, x);  c = Mul(x, s)          or c = Pow(x, 3.0)
//! k = Mul(0.044715, c);  u = Add(x, k);  v = Mul(0.7978846, u)
//! t = Tanh(v);  a = Add(1.0, t)
//! (tail)
//! ```
//!
//! Operands of `Add` and `Mul` may come in either order, and the tail `0.5·x·a` may be associated
//! any way: `Mul(Mul(x, a), 0.5)`, `Div(Mul(x, a), 2)`, `Mul(Mul(a, 0.5), x)` or
//! `Mul(Mul(x, 0.5), a)`. Constants match to a relative 1e-5. Every intermediate value must be read
//! only inside the pattern (and not be a graph output), so that removing it changes nothing else.

use super::view::GraphView;
use kiln_runtime::ops::GeluApproximate;
use std::collections::HashSet;

/// A recognised GELU subgraph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GeluMatch {
    /// The value the GELU applies to.
    pub input: String,
    /// Which form was written out.
    pub approximate: GeluApproximate,
    /// The node whose result is the GELU's result (imported as the `gelu`).
    pub last: usize,
    /// The other nodes of the pattern (skipped at import).
    pub internal: Vec<usize>,
}

/// Every GELU pattern in the graph, in node order; a node belongs to at most one match.
pub(crate) fn find_gelus(view: &GraphView<'_>) -> Vec<GeluMatch> {
    let m = Matcher { view };
    let mut claimed = HashSet::new();
    let mut found = Vec::new();
    for i in 0..view.graph.node.len() {
        let candidate = match view.node(i).op {
            "Erf" => m.erf_form(i),
            "Tanh" => m.tanh_form(i),
            _ => None,
        };
        if let Some(g) = candidate {
            let nodes: Vec<usize> = g.internal.iter().copied().chain([g.last]).collect();
            if nodes.iter().all(|n| !claimed.contains(n)) {
                claimed.extend(nodes);
                found.push(g);
            }
        }
    }
    found
}

/// `√2`, `1/√2`, `√(2/π)`.
const SQRT_2: f32 = std::f32::consts::SQRT_2;
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

struct Matcher<'v, 'a> {
    view: &'v GraphView<'a>,
}

impl<'v, 'a> Matcher<'v, 'a> {
    /// The two operands of node `i` if it is a default-domain `op` with exactly two operands and
    /// one result.
    fn binary(&self, i: usize, op: &str) -> Option<(&'a str, &'a str)> {
        let n = self.view.node(i);
        let p = n.proto;
        let ok = n.op == op
            && n.in_default_domain()
            && p.input.len() == 2
            && p.output.len() == 1
            && n.input(0).is_some()
            && n.input(1).is_some();
        // The borrow is of the graph ('a), not of the view.
        let g = self.view.graph;
        ok.then(|| (g.node[i].input[0].as_str(), g.node[i].input[1].as_str()))
    }

    /// Node `i`'s only result.
    fn out(&self, i: usize) -> Option<&'a str> {
        let o = self.view.graph.node[i].output.first()?;
        (!o.is_empty()).then_some(o.as_str())
    }

    /// Whether `name` is a scalar constant within 1e-5 (relative) of `target`.
    fn is_const(&self, name: &str, target: f32) -> bool {
        self.view
            .scalar(name)
            .is_some_and(|v| (v - target).abs() <= 1e-5 * target.abs())
    }

    /// For a commutative binary node `i` of type `op` with one operand a constant near `target`,
    /// the other operand.
    fn with_const(&self, i: usize, op: &str, target: f32) -> Option<&'a str> {
        let (a, b) = self.binary(i, op)?;
        if self.is_const(b, target) {
            Some(a)
        } else if self.is_const(a, target) {
            Some(b)
        } else {
            None
        }
    }

    /// For a commutative binary node `i` of type `op` reading `known`, its other operand.
    fn other(&self, i: usize, op: &str, known: &str) -> Option<&'a str> {
        let (a, b) = self.binary(i, op)?;
        if a == known {
            Some(b)
        } else if b == known {
            Some(a)
        } else {
            None
        }
    }

    /// The producer of `value`, when `value` is read only by node `reader`.
    fn private_producer(&self, value: &str, reader: usize) -> Option<usize> {
        (self.view.single_consumer(value) == Some(reader))
            .then(|| self.view.producer(value))
            .flatten()
    }

    /// `0.5·x·a` from `a`'s only reader on: returns the last node and the other nodes.
    fn tail(&self, a: &str, x: &str) -> Option<(usize, Vec<usize>)> {
        let p = self.view.single_consumer(a)?;
        let s = self.other(p, "Mul", a)?;
        if s == x {
            // Mul(Mul(x, a), 0.5) or Div(Mul(x, a), 2).
            let m = self.out(p)?;
            let q = self.view.single_consumer(m)?;
            let half = self.with_const(q, "Mul", 0.5) == Some(m)
                || self
                    .binary(q, "Div")
                    .is_some_and(|(num, den)| num == m && self.is_const(den, 2.0));
            return half.then(|| (q, vec![p]));
        }
        if self.is_const(s, 0.5) {
            // Mul(Mul(a, 0.5), x).
            let q = self.view.single_consumer(self.out(p)?)?;
            return (self.other(q, "Mul", self.out(p)?)? == x).then(|| (q, vec![p]));
        }
        // Mul(Mul(x, 0.5), a).
        let h = self.private_producer(s, p)?;
        (self.with_const(h, "Mul", 0.5)? == x).then(|| (p, vec![h]))
    }

    /// The exact form, found from its `Erf` node `e`.
    fn erf_form(&self, e: usize) -> Option<GeluMatch> {
        let en = self.view.node(e);
        if !en.in_default_domain() || en.proto.input.len() != 1 {
            return None;
        }
        let d = en.input(0)?;
        let pd = self.private_producer(d, e)?;
        let x = match self.binary(pd, "Div") {
            Some((x, c)) if self.is_const(c, SQRT_2) => x,
            _ => self.with_const(pd, "Mul", FRAC_1_SQRT_2)?,
        };
        let add = self.view.single_consumer(self.out(e)?)?;
        self.with_const(add, "Add", 1.0)?;
        let (last, mut internal) = self.tail(self.out(add)?, x)?;
        internal.extend([pd, e, add]);
        Some(GeluMatch {
            input: x.to_string(),
            approximate: GeluApproximate::None,
            last,
            internal,
        })
    }

    /// `x³` written as `Mul(x, Mul(x, x))` (any order) or `Pow(x, 3)`, read only by `reader`: the
    /// nodes computing it.
    fn cube(&self, c: &str, x: &str, reader: usize) -> Option<Vec<usize>> {
        let n = self.private_producer(c, reader)?;
        if let Some((base, e)) = self.binary(n, "Pow") {
            return (base == x && self.is_const(e, 3.0)).then(|| vec![n]);
        }
        let sq = self.other(n, "Mul", x)?;
        let s = self.private_producer(sq, n)?;
        (self.binary(s, "Mul")? == (x, x)).then(|| vec![n, s])
    }

    /// The tanh form, found from its `Tanh` node `t`.
    fn tanh_form(&self, t: usize) -> Option<GeluMatch> {
        let tn = self.view.node(t);
        if !tn.in_default_domain() || tn.proto.input.len() != 1 {
            return None;
        }
        let v = tn.input(0)?;
        let nv = self.private_producer(v, t)?;
        let u = self.with_const(nv, "Mul", SQRT_2_OVER_PI)?;
        let nu = self.private_producer(u, nv)?;
        let (p, q) = self.binary(nu, "Add")?;
        // u = x + k: either operand may be x.
        let (x, inner) = [(p, q), (q, p)].into_iter().find_map(|(x, k)| {
            let nk = self.private_producer(k, nu)?;
            let c = self.with_const(nk, "Mul", 0.044_715)?;
            let mut nodes = self.cube(c, x, nk)?;
            nodes.push(nk);
            Some((x, nodes))
        })?;
        let add = self.view.single_consumer(self.out(t)?)?;
        self.with_const(add, "Add", 1.0)?;
        let (last, mut internal) = self.tail(self.out(add)?, x)?;
        internal.extend(inner);
        internal.extend([nu, nv, t, add]);
        Some(GeluMatch {
            input: x.to_string(),
            approximate: GeluApproximate::Tanh,
            last,
            internal,
        })
    }
}
