//! The lexer of the text form: tokens with their 1-based line and column, comments skipped.
//!
//! Newlines are ordinary whitespace: the grammar never needs them, and a statement split over
//! several lines still parses. The lexer is pulled one token at a time, so a bad character late in
//! a file never hides a syntax error earlier on.

use std::fmt;

/// A place in the source: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// What a token is; its text is kept on [`Token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    /// `%name`: a value.
    Value,
    /// A word: keyword, op name, attribute name, `true`, `none`, `f32`, `inf`, `-inf`, `NaN`, …
    Ident,
    /// An integer, possibly negative: `-?[0-9]+`.
    Int,
    /// A number with a fraction or an exponent: `1.0`, `1e-5`, `-0.25`.
    Float,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// `=`
    Equals,
    /// The end of the input.
    Eof,
}

/// One token: its kind, its source text and where it starts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    /// What it is.
    pub kind: Tok,
    /// Its text exactly as written (a value keeps its `%`).
    pub text: &'a str,
    /// Its first character.
    pub pos: Pos,
    /// Byte offset of its first character (to slice the text of compound attribute values).
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
}

impl Token<'_> {
    /// How an error message names the token: `'%w'`, `'('`, or `end of file`.
    pub fn describe(&self) -> String {
        match self.kind {
            Tok::Eof => "end of file".to_string(),
            _ => format!("'{}'", self.text),
        }
    }

    /// The name of a [`Tok::Value`] token, without its `%`.
    pub fn value_name(&self) -> &str {
        self.text.strip_prefix('%').unwrap_or(self.text)
    }
}

/// An error in the text (lexing, syntax or attributes) before it gets its file name: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TextError {
    /// The offending token or character.
    pub pos: Pos,
    /// What was expected and what was found.
    pub msg: String,
}

/// Characters of a value name after the `%`.
pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits source text into tokens on demand.
pub(super) struct Lexer<'a> {
    src: &'a str,
    offset: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src,
            offset: 0,
            line: 1,
            col: 1,
        }
    }

    /// The source text between two byte offsets (both from tokens of this lexer).
    pub fn slice(&self, start: usize, end: usize) -> &'a str {
        self.src.get(start..end).unwrap_or_default()
    }

    /// The text not yet consumed (`offset` only ever advances by whole characters).
    fn rest(&self) -> &'a str {
        self.src.get(self.offset..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.rest().chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn bump_while(&mut self, pred: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.bump();
        }
    }

    fn skip_blanks_and_comments(&mut self) {
        while let Some(c) = self.peek() {
            if c == ';' {
                self.bump_while(|c| c != '\n');
            } else if c.is_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// The rest of a number whose first character is consumed: digits, then an optional fraction
    /// and exponent. Returns whether it was a float.
    fn number(&mut self) -> bool {
        let mut float = false;
        self.bump_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.') && self.peek_second().is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.bump();
            self.bump_while(|c| c.is_ascii_digit());
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            // Only an exponent if digits follow; otherwise `e` starts the next token.
            let rest = self.rest().get(1..).unwrap_or_default();
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.starts_with(|c: char| c.is_ascii_digit()) {
                float = true;
                self.bump();
                if matches!(self.peek(), Some('+' | '-')) {
                    self.bump();
                }
                self.bump_while(|c| c.is_ascii_digit());
            }
        }
        float
    }

    /// The next token ([`Tok::Eof`] at the end, as often as asked).
    pub fn next_token(&mut self) -> Result<Token<'a>, TextError> {
        self.skip_blanks_and_comments();
        let pos = Pos {
            line: self.line,
            col: self.col,
        };
        let start = self.offset;
        let Some(c) = self.bump() else {
            return Ok(Token {
                kind: Tok::Eof,
                text: "",
                pos,
                start,
                end: start,
            });
        };
        let kind = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            '=' => Tok::Equals,
            '%' => {
                if !self.peek().is_some_and(is_name_char) {
                    return Err(TextError {
                        pos,
                        msg: "expected a value name after '%' (letters, digits, '_' or '.')"
                            .to_string(),
                    });
                }
                self.bump_while(is_name_char);
                Tok::Value
            }
            // A sign belongs to a number, or to `-inf` (which is how `{:?}` prints −∞).
            c if c.is_ascii_digit()
                || (c == '-' && self.peek().is_some_and(|c| c.is_ascii_digit())) =>
            {
                if self.number() {
                    Tok::Float
                } else {
                    Tok::Int
                }
            }
            '-' if self.peek().is_some_and(is_ident_start) => {
                self.bump_while(is_ident_char);
                Tok::Ident
            }
            c if is_ident_start(c) => {
                self.bump_while(is_ident_char);
                Tok::Ident
            }
            c => {
                return Err(TextError {
                    pos,
                    msg: format!("unexpected character {c:?}"),
                })
            }
        };
        Ok(Token {
            kind,
            text: self.slice(start, self.offset),
            pos,
            start,
            end: self.offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(src: &str) -> Vec<(Tok, String, usize, usize)> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token().unwrap();
            if t.kind == Tok::Eof {
                return out;
            }
            out.push((t.kind, t.text.to_string(), t.pos.line, t.pos.col));
        }
    }

    #[test]
    fn tokens_carry_their_positions() {
        let toks = lex("  %y = relu(%x) ; a comment\n: f32[2, 3]");
        let expected = [
            (Tok::Value, "%y", 1, 3),
            (Tok::Equals, "=", 1, 6),
            (Tok::Ident, "relu", 1, 8),
            (Tok::LParen, "(", 1, 12),
            (Tok::Value, "%x", 1, 13),
            (Tok::RParen, ")", 1, 15),
            (Tok::Colon, ":", 2, 1),
            (Tok::Ident, "f32", 2, 3),
            (Tok::LBracket, "[", 2, 6),
            (Tok::Int, "2", 2, 7),
            (Tok::Comma, ",", 2, 8),
            (Tok::Int, "3", 2, 10),
            (Tok::RBracket, "]", 2, 11),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|&(k, t, l, c)| (k, t.to_string(), l, c))
            .collect();
        assert_eq!(toks, expected);
    }

    #[test]
    fn numbers_in_every_form_rust_prints() {
        let toks = lex("1 -2 0.01 1e-5 -1.5E+3 2e -inf NaN %conv1.weight");
        let toks: Vec<(Tok, &str)> = toks.iter().map(|(k, t, _, _)| (*k, t.as_str())).collect();
        assert_eq!(
            toks,
            [
                (Tok::Int, "1"),
                (Tok::Int, "-2"),
                (Tok::Float, "0.01"),
                (Tok::Float, "1e-5"),
                (Tok::Float, "-1.5E+3"),
                // `2e` has no exponent digits: the `e` is a word of its own.
                (Tok::Int, "2"),
                (Tok::Ident, "e"),
                (Tok::Ident, "-inf"),
                (Tok::Ident, "NaN"),
                (Tok::Value, "%conv1.weight"),
            ]
        );
        // `1.x`: a `.` not followed by a digit is not part of the number, and not a token.
        let mut lexer = Lexer::new("1.x");
        assert_eq!(lexer.next_token().unwrap().text, "1");
        let err = lexer.next_token().unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, col: 2 });
        assert_eq!(err.msg, "unexpected character '.'");
    }

    #[test]
    fn bad_characters_are_errors_at_their_place() {
        let mut lexer = Lexer::new("graph g(\n  %x: f32[1] #");
        let err = loop {
            match lexer.next_token() {
                Ok(t) if t.kind == Tok::Eof => panic!("no error"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.pos, Pos { line: 2, col: 14 });
        assert_eq!(err.msg, "unexpected character '#'");
        let err = Lexer::new("% x").next_token().unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, col: 1 });
        assert!(err.msg.starts_with("expected a value name after '%'"));
    }
}
