//! Parses the text form, with line:column errors that say what was expected.
//!
//! A recursive-descent parser over [`Lexer`] tokens, one token of lookahead. The grammar
//! (newlines are whitespace; `;` starts a comment):
//!
//! ```text
//! file      = "graph" IDENT "(" [input {"," input}] ")" "{" {stmt} return "}" EOF
//! input     = VALUE ":" type
//! stmt      = "param" VALUE ":" type
//!           | VALUE "=" IDENT "(" [VALUE {"," VALUE}] ")" ["{" [attr {"," attr}] "}"] ":" type
//! return    = "return" VALUE {"," VALUE}
//! type      = "f32" "[" [INT {"," INT}] "]"
//! attr      = IDENT "=" attrvalue
//! attrvalue = INT | FLOAT | IDENT ["(" [attrvalue {"," attrvalue}] ")"]
//!           | "[" [attrvalue {"," attrvalue}] "]"
//! ```
//!
//! Values must be defined before they are used; what an op's attributes mean is the attribute
//! table's business ([`super::attrs`]); the graph API infers each result type, which must equal
//! the declared one.

use super::attrs::{self, Attr, Value, ValueKind};
use super::lexer::{Lexer, Pos, TextError, Tok, Token};
use crate::error::{ParseError, Result};
use crate::ir::graph::{Graph, ValueId};
use crate::ir::types::TensorType;
use kiln_runtime::RuntimeError;
use std::collections::HashMap;
use std::path::Path;

/// Parses a graph from its text form.
pub fn parse(text: &str) -> Result<Graph> {
    parse_source(text, None)
}

/// Reads and parses a `.kiln` file; errors carry the file name.
pub fn parse_file(path: &Path) -> Result<Graph> {
    let text = std::fs::read_to_string(path).map_err(|source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_source(&text, Some(path.display().to_string()))
}

fn parse_source(text: &str, file: Option<String>) -> Result<Graph> {
    Parser::new(text).and_then(Parser::file).map_err(|e| {
        ParseError {
            file,
            line: e.pos.line,
            col: e.pos.col,
            msg: e.msg,
        }
        .into()
    })
}

/// An error at `pos`.
fn error_at<T>(pos: Pos, msg: String) -> Result<T, TextError> {
    Err(TextError { pos, msg })
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The lookahead token.
    tok: Token<'a>,
    graph: Graph,
    /// Where each value was defined, for "already defined on line N".
    defined: HashMap<String, Pos>,
    /// Byte offset just past the last token consumed.
    prev_end: usize,
    /// How many lists and calls enclose the attribute value being parsed.
    depth: usize,
}

/// The deepest nesting of lists and calls in an attribute value. Kiln's attributes nest at most
/// two levels (`activation=leaky_relu(0.1)` inside an epilogue); the bound keeps the recursive
/// descent from overflowing the stack on hostile input.
pub const MAX_NESTING: usize = 32;

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Parser<'a>, TextError> {
        let mut lexer = Lexer::new(src);
        let tok = lexer.next_token()?;
        Ok(Parser {
            lexer,
            tok,
            graph: Graph::default(),
            defined: HashMap::new(),
            prev_end: 0,
            depth: 0,
        })
    }

    /// Consumes the lookahead token and returns it.
    fn advance(&mut self) -> Result<Token<'a>, TextError> {
        let next = self.lexer.next_token()?;
        self.prev_end = self.tok.end;
        Ok(std::mem::replace(&mut self.tok, next))
    }

    /// "expected `what`, found …" at the lookahead token.
    fn expected<T>(&self, what: &str) -> Result<T, TextError> {
        error_at(
            self.tok.pos,
            format!("expected {what}, found {}", self.tok.describe()),
        )
    }

    /// Consumes a token of `kind`, or fails with "expected `what`".
    fn expect(&mut self, kind: Tok, what: &str) -> Result<Token<'a>, TextError> {
        if self.tok.kind == kind {
            self.advance()
        } else {
            self.expected(what)
        }
    }

    /// Consumes a `,`, or else stops a list at `close` (returning `false`, `close` not consumed).
    fn comma_or(&mut self, close: Tok, what: &str) -> Result<bool, TextError> {
        match self.tok.kind {
            Tok::Comma => {
                self.advance()?;
                Ok(true)
            }
            kind if kind == close => Ok(false),
            _ => self.expected(what),
        }
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.tok.kind == Tok::Ident && self.tok.text == keyword
    }

    /// Records the definition of the value named by `tok`, refusing a second one.
    fn define(&mut self, tok: &Token<'_>) -> Result<(), TextError> {
        let name = tok.value_name();
        if let Some(first) = self.defined.get(name) {
            return error_at(
                tok.pos,
                format!("value '%{name}' is already defined on line {}", first.line),
            );
        }
        self.defined.insert(name.to_string(), tok.pos);
        Ok(())
    }

    /// The value named by `tok`, which must be defined by now.
    fn use_value(&self, tok: &Token<'_>) -> Result<ValueId, TextError> {
        match self.graph.find(tok.value_name()) {
            Some(v) => Ok(v),
            None => error_at(
                tok.pos,
                format!(
                    "unknown value '{}' (values must be defined before they are used)",
                    tok.text
                ),
            ),
        }
    }

    fn file(mut self) -> Result<Graph, TextError> {
        if !self.at_keyword("graph") {
            return self.expected("'graph'");
        }
        self.advance()?;
        let name = self.expect(Tok::Ident, "the graph's name")?;
        self.graph.name = name.text.to_string();
        self.expect(Tok::LParen, "'(' after the graph's name")?;
        if self.tok.kind != Tok::RParen {
            loop {
                self.input()?;
                if !self.comma_or(Tok::RParen, "',' or ')' after input")? {
                    break;
                }
            }
        }
        self.expect(Tok::RParen, "')'")?;
        self.expect(Tok::LBrace, "'{' after the inputs")?;
        loop {
            if self.at_keyword("param") {
                self.param()?;
            } else if self.at_keyword("return") {
                self.ret()?;
                break;
            } else if self.tok.kind == Tok::Value {
                self.op()?;
            } else if self.tok.kind == Tok::RBrace {
                return error_at(self.tok.pos, "missing 'return' before '}'".to_string());
            } else {
                return self.expected("'param', an op ('%name = op(…)') or 'return'");
            }
        }
        self.expect(Tok::RBrace, "',' or '}' after return value")?;
        self.expect(Tok::Eof, "end of file after '}'")?;
        Ok(self.graph)
    }

    /// `%x: f32[…]` in the header.
    fn input(&mut self) -> Result<(), TextError> {
        let name = self.expect(Tok::Value, "an input ('%name: f32[…]')")?;
        self.define(&name)?;
        self.expect(
            Tok::Colon,
            &format!("':' and the type after input '{}'", name.text),
        )?;
        let (shape, _) = self.ty()?;
        match self.graph.add_input(name.value_name(), &shape) {
            Ok(_) => Ok(()),
            Err(e) => error_at(name.pos, e.to_string()),
        }
    }

    /// `param %w: f32[…]`.
    fn param(&mut self) -> Result<(), TextError> {
        self.advance()?;
        let name = self.expect(Tok::Value, "a parameter name ('%name') after 'param'")?;
        self.define(&name)?;
        self.expect(
            Tok::Colon,
            &format!("':' and the type after parameter '{}'", name.text),
        )?;
        let (shape, _) = self.ty()?;
        match self.graph.add_param(name.value_name(), &shape, None) {
            Ok(_) => Ok(()),
            Err(e) => error_at(name.pos, e.to_string()),
        }
    }

    /// `%r = op(%a, …) {k=v, …} : f32[…]`.
    fn op(&mut self) -> Result<(), TextError> {
        let result = self.advance()?;
        self.define(&result)?;
        self.expect(Tok::Equals, &format!("'=' after '{}'", result.text))?;
        let op_tok = self.expect(Tok::Ident, "an op name after '='")?;
        let template = match attrs::template(op_tok.text) {
            Some(op) => op,
            None => return error_at(op_tok.pos, attrs::unknown_op(op_tok.text)),
        };
        self.expect(Tok::LParen, &format!("'(' after '{}'", op_tok.text))?;
        let mut operands = Vec::new();
        if self.tok.kind != Tok::RParen {
            loop {
                let operand = self.expect(Tok::Value, "an operand ('%name')")?;
                operands.push(self.use_value(&operand)?);
                if !self.comma_or(Tok::RParen, "',' or ')' after operand")? {
                    break;
                }
            }
        }
        self.advance()?; // the `)`
        let mut written = Vec::new();
        if self.tok.kind == Tok::LBrace {
            self.advance()?;
            if self.tok.kind != Tok::RBrace {
                loop {
                    written.push(self.attr()?);
                    if !self.comma_or(Tok::RBrace, "',' or '}' after attribute")? {
                        break;
                    }
                }
            }
            self.advance()?; // the `}`
            self.expect(Tok::Colon, "':' and the result type after the attributes")?;
        } else {
            self.expect(Tok::Colon, "'{' or ':' after the operands")?;
        }
        let (shape, ty_pos) = self.ty()?;
        let mut op = attrs::read_attrs(template, &written, op_tok.pos)?;
        attrs::set_bias_from_operands(&mut op, operands.len());
        let v = match self.graph.add_op(result.value_name(), op, &operands) {
            Ok(v) => v,
            Err(e) => return error_at(op_tok.pos, e.to_string()),
        };
        let declared = TensorType { shape };
        let inferred = self.graph.ty(v);
        if *inferred != declared {
            return error_at(
                ty_pos,
                format!(
                    "result type of '{}': expected {inferred} (inferred from the operands), \
                     got {declared} (declared)",
                    result.text
                ),
            );
        }
        Ok(())
    }

    /// `key=value`.
    fn attr(&mut self) -> Result<Attr, TextError> {
        let key = self.expect(Tok::Ident, "an attribute name")?;
        self.expect(
            Tok::Equals,
            &format!("'=' after attribute name '{}'", key.text),
        )?;
        let value = self.attr_value()?;
        Ok(Attr {
            key: key.text.to_string(),
            key_pos: key.pos,
            value,
        })
    }

    /// An integer, a number, a word, `name(args)` or `[items]`.
    fn attr_value(&mut self) -> Result<Value, TextError> {
        let first = self.tok;
        let kind = match first.kind {
            Tok::Int => {
                self.advance()?;
                ValueKind::Int
            }
            Tok::Float => {
                self.advance()?;
                ValueKind::Float
            }
            Tok::Ident => {
                self.advance()?;
                if self.tok.kind == Tok::LParen {
                    self.advance()?;
                    let args = self.value_list(Tok::RParen, "',' or ')' after argument")?;
                    ValueKind::Call(first.text.to_string(), args)
                } else {
                    ValueKind::Word
                }
            }
            Tok::LBracket => {
                self.advance()?;
                ValueKind::List(self.value_list(Tok::RBracket, "',' or ']' in list")?)
            }
            _ => return self.expected("an attribute value"),
        };
        // Messages quote the value as written: the source from its first to its last token.
        Ok(Value {
            pos: first.pos,
            text: self.lexer.slice(first.start, self.prev_end).to_string(),
            kind,
        })
    }

    /// Items up to and including `close` (the opening token already consumed).
    fn value_list(&mut self, close: Tok, what: &str) -> Result<Vec<Value>, TextError> {
        if self.depth >= MAX_NESTING {
            return error_at(
                self.tok.pos,
                format!("attribute value nested more than {MAX_NESTING} levels deep"),
            );
        }
        self.depth += 1;
        let items = self.value_items(close, what);
        self.depth -= 1;
        items
    }

    fn value_items(&mut self, close: Tok, what: &str) -> Result<Vec<Value>, TextError> {
        let mut items = Vec::new();
        if self.tok.kind != close {
            loop {
                items.push(self.attr_value()?);
                if !self.comma_or(close, what)? {
                    break;
                }
            }
        }
        self.advance()?;
        Ok(items)
    }

    /// `return %a, …`.
    fn ret(&mut self) -> Result<(), TextError> {
        self.advance()?;
        let mut outputs = Vec::new();
        loop {
            let v = self.expect(Tok::Value, "a value to return ('%name')")?;
            outputs.push(self.use_value(&v)?);
            if self.tok.kind != Tok::Comma {
                break;
            }
            self.advance()?;
        }
        self.graph.set_outputs(outputs);
        Ok(())
    }

    /// `f32[d, …]` and where it starts.
    fn ty(&mut self) -> Result<(Vec<usize>, Pos), TextError> {
        let pos = self.tok.pos;
        if self.tok.kind != Tok::Ident {
            return self.expected("a type such as 'f32[1, 3]'");
        }
        if self.tok.text != "f32" {
            return error_at(
                pos,
                format!("unsupported element type '{}' (only f32)", self.tok.text),
            );
        }
        self.advance()?;
        self.expect(Tok::LBracket, "'[' after 'f32'")?;
        let mut shape = Vec::new();
        if self.tok.kind != Tok::RBracket {
            loop {
                let dim = self.expect(Tok::Int, "a dimension")?;
                match dim.text.parse::<usize>() {
                    Ok(d) => shape.push(d),
                    Err(_) if dim.text.starts_with('-') => {
                        return error_at(dim.pos, format!("negative dimension '{}'", dim.text))
                    }
                    Err(_) => {
                        return error_at(dim.pos, format!("dimension '{}' is too large", dim.text))
                    }
                }
                if !self.comma_or(Tok::RBracket, "',' or ']' in the shape")? {
                    break;
                }
            }
        }
        self.advance()?;
        Ok((shape, pos))
    }
}
