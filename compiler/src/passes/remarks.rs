//! Explained refusals: every fusion or in-place candidate a pass turns down keeps its reason, shown
//! as a trailing comment in the text forms and listed by `kiln compile --explain`.
//!
//! ```text
//!   %relu1 = relu(%conv1) : f32[1, 8, 4, 4]  ; not fused: %conv1 has 2 users (%relu1, %pool)
//! ```
//!
//! A remark is keyed by the value it concerns (by name, which is stable across rewrites, unlike a
//! node index once nodes are removed) and by the pass that made it. The [`Remarks`] store is
//! returned by the pipeline, not kept in the graph: a pass's latest run replaces its earlier
//! remarks, and remarks on values that no longer exist are dropped.

use crate::ir::graph::Graph;
use crate::ir::text::print;
use std::fmt::Write;

/// One refused candidate: which pass, on which value, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remark {
    /// The pass that refused (its name in [`PASS_NAMES`](super::PASS_NAMES)).
    pub pass: &'static str,
    /// The value the candidate rewrite would have removed or rewritten, without the `%`.
    pub value: String,
    /// The reason, starting with what was refused: `not fused: %3 has 2 users (%4, %7)`.
    pub message: String,
}

impl Remark {
    /// A remark of `pass` on `value`.
    pub fn new(pass: &'static str, value: &str, message: String) -> Remark {
        Remark {
            pass,
            value: value.to_string(),
            message,
        }
    }
}

/// The refusals of a pipeline, in the order the passes made them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remarks {
    list: Vec<Remark>,
}

impl Remarks {
    /// An empty store.
    pub fn new() -> Remarks {
        Remarks::default()
    }

    /// Replaces the remarks of `pass` with `remarks` (those of its latest run).
    pub fn replace_pass(&mut self, pass: &'static str, remarks: Vec<Remark>) {
        self.list.retain(|r| r.pass != pass);
        self.list.extend(remarks);
    }

    /// Keeps only the remarks on values for which `exists` holds (a later rewrite may have removed
    /// the value a remark was about).
    pub fn retain_values(&mut self, exists: impl Fn(&str) -> bool) {
        self.list.retain(|r| exists(&r.value));
    }

    /// Every remark, in the order the passes made them.
    pub fn iter(&self) -> impl Iterator<Item = &Remark> {
        self.list.iter()
    }

    /// The remarks on the value called `name`.
    pub fn for_value<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Remark> + 'a {
        self.list.iter().filter(move |r| r.value == name)
    }

    /// The trailing comment for the value called `name` (`  ; not fused: …; not in place: …`), or
    /// an empty string when there is no remark on it.
    pub fn comment_for(&self, name: &str) -> String {
        // Two passes may refuse the same candidate for the same reason: say it once.
        let mut messages: Vec<&str> = Vec::new();
        for r in self.for_value(name) {
            if !messages.contains(&r.message.as_str()) {
                messages.push(&r.message);
            }
        }
        if messages.is_empty() {
            String::new()
        } else {
            format!("  ; {}", messages.join("; "))
        }
    }

    /// Number of remarks.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is no remark.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The graph's text form ([`print()`]) with each value's remarks appended to its line as a comment.
/// Comments run to the end of the line in the text form, so the result still parses.
pub fn print_with_remarks(graph: &Graph, remarks: &Remarks) -> String {
    let text = print(graph);
    if remarks.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(line);
        if let Some(name) = defined_value(line) {
            out.push_str(&remarks.comment_for(name));
        }
        out.push('\n');
    }
    out
}

/// The value an op line `  %name = …` defines.
fn defined_value(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("  %")?;
    let (name, _) = rest.split_once(" = ")?;
    Some(name)
}

/// `--explain`: the rewrites each pass made and every refusal with its reason, one per line.
///
/// ```text
/// fuse_activation: 1 rewrite
///   %relu2: not fused: %conv2 has 2 users (%relu2, %out)
/// ```
pub fn explain(rewrites: &[(&'static str, usize)], remarks: &Remarks) -> String {
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for &(pass, _) in rewrites {
        if seen.contains(&pass) {
            continue;
        }
        seen.push(pass);
        let n: usize = rewrites
            .iter()
            .filter(|(p, _)| *p == pass)
            .map(|(_, n)| n)
            .sum();
        let plural = if n == 1 { "" } else { "s" };
        let _ = writeln!(out, "{pass}: {n} rewrite{plural}");
        for r in remarks.iter().filter(|r| r.pass == pass) {
            let _ = writeln!(out, "  %{}: {}", r.value, r.message);
        }
    }
    if seen.is_empty() {
        out.push_str("no passes ran\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_lines_name_their_value() {
        assert_eq!(
            defined_value("  %conv1 = conv2d(%x) : f32[1]"),
            Some("conv1")
        );
        assert_eq!(defined_value("  param %w: f32[1]"), None);
        assert_eq!(defined_value("  return %y"), None);
    }

    #[test]
    fn a_later_run_replaces_a_pass_s_remarks() {
        let mut r = Remarks::new();
        r.replace_pass("a", vec![Remark::new("a", "x", "not fused: one".into())]);
        r.replace_pass("b", vec![Remark::new("b", "x", "not in place: two".into())]);
        r.replace_pass("c", vec![Remark::new("c", "x", "not fused: one".into())]);
        assert_eq!(r.comment_for("x"), "  ; not fused: one; not in place: two");
        r.replace_pass("c", Vec::new());
        r.replace_pass("a", Vec::new());
        assert_eq!(r.comment_for("x"), "  ; not in place: two");
        r.retain_values(|v| v != "x");
        assert!(r.is_empty());
    }
}
