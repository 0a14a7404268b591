//! Just enough of GraphQL (the October 2021 spec's executable documents) for the Shopify fake to
//! read what a client sends: one operation (`query` / `mutation`, optionally named, with variable
//! definitions), fields with aliases, arguments, directives and selection sets, and inline
//! fragments (`... on InventoryItem { … }`). Named fragments, subscriptions and block strings are
//! refused with a parse error.
//!
//! Public so the connector's contract test can parse the documents it sends and check them
//! against Shopify's introspection schema with the same reader the fake uses.

use serde_json::{Map, Value as Json};

/// Longest document read (Shopify refuses far smaller queries by cost long before this).
pub const MAX_DOCUMENT_CHARS: usize = 100_000;
/// Deepest nesting of selection sets and values.
pub const MAX_DEPTH: usize = 32;

/// A literal or variable in argument position.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    String(String),
    /// An enum value (`UPDATED_AT`).
    Enum(String),
    /// `[…]`.
    List(Vec<Value>),
    /// `{name: value, …}`.
    Object(Vec<(String, Value)>),
    /// `$name`.
    Variable(String),
}

impl Value {
    /// The JSON value, with variables taken from `vars` (a missing variable is `null`).
    pub fn resolve(&self, vars: &Json) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::String(s) | Value::Enum(s) => Json::String(s.clone()),
            Value::List(items) => Json::Array(items.iter().map(|v| v.resolve(vars)).collect()),
            Value::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.resolve(vars)))
                    .collect::<Map<_, _>>(),
            ),
            Value::Variable(name) => vars.get(name).cloned().unwrap_or(Json::Null),
        }
    }
}

/// `@name(args)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    /// The directive's name without `@`.
    pub name: String,
    /// Its arguments.
    pub arguments: Vec<(String, Value)>,
}

/// One field of a selection set.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `alias:` when given.
    pub alias: Option<String>,
    /// The field name.
    pub name: String,
    /// Arguments in the order written.
    pub arguments: Vec<(String, Value)>,
    /// Directives on the field (`@idempotent(key: "…")`).
    pub directives: Vec<Directive>,
    /// Sub-selections (empty for a leaf).
    pub selections: Vec<Selection>,
}

impl Field {
    /// The key the field's value has in the response.
    pub fn response_key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }

    /// An argument, resolved against `vars`; `None` when not written.
    pub fn arg(&self, name: &str, vars: &Json) -> Option<Json> {
        self.arguments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.resolve(vars))
    }

    /// A directive by name.
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().find(|d| d.name == name)
    }
}

/// A field or an inline fragment.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// A field.
    Field(Field),
    /// `... on Type { … }` (or `... { … }`).
    InlineFragment {
        /// `Type` of `on Type`.
        type_condition: Option<String>,
        /// The fragment's selections.
        selections: Vec<Selection>,
    },
}

/// `query` or `mutation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// A read.
    Query,
    /// A write.
    Mutation,
}

/// `$name: Type = default`.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableDefinition {
    /// Name without `$`.
    pub name: String,
    /// The type as written, e.g. `[ID!]!`.
    pub type_text: String,
    /// The default value, when given.
    pub default: Option<Value>,
}

/// The one operation of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Query or mutation.
    pub kind: OperationKind,
    /// The operation's name, when given.
    pub name: Option<String>,
    /// Its variable definitions.
    pub variables: Vec<VariableDefinition>,
    /// The root selection set.
    pub selections: Vec<Selection>,
}

impl Operation {
    /// The root fields (inline fragments at the root flattened).
    pub fn root_fields(&self) -> Vec<&Field> {
        let mut out = Vec::new();
        collect_fields(&self.selections, &mut out);
        out
    }
}

fn collect_fields<'a>(sels: &'a [Selection], out: &mut Vec<&'a Field>) {
    for s in sels {
        match s {
            Selection::Field(f) => out.push(f),
            Selection::InlineFragment { selections, .. } => collect_fields(selections, out),
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Parse error on line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: usize,
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let mut lx = Lexer {
        chars: text.char_indices().peekable(),
        line: 1,
    };
    let mut out = Vec::new();
    let err = |line, m: &str| ParseError {
        line,
        message: m.to_owned(),
    };
    while let Some((_, c)) = lx.chars.next() {
        match c {
            '\n' => lx.line += 1,
            ' ' | '\t' | '\r' | ',' | '\u{feff}' => {}
            '#' => {
                while let Some((_, c)) = lx.chars.peek() {
                    if *c == '\n' {
                        break;
                    }
                    lx.chars.next();
                }
            }
            '!' | '$' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '}' | '|' | '&' => {
                out.push((Tok::Punct(c), lx.line));
            }
            '.' => {
                let a = lx.chars.next().map(|x| x.1);
                let b = lx.chars.next().map(|x| x.1);
                if a != Some('.') || b != Some('.') {
                    return Err(err(lx.line, "expected '...'"));
                }
                out.push((Tok::Spread, lx.line));
            }
            '"' => {
                if lx.chars.peek().map(|x| x.1) == Some('"') {
                    lx.chars.next();
                    if lx.chars.peek().map(|x| x.1) == Some('"') {
                        return Err(err(lx.line, "block strings are not supported"));
                    }
                    out.push((Tok::Str(String::new()), lx.line));
                    continue;
                }
                let mut s = String::new();
                loop {
                    let Some((_, c)) = lx.chars.next() else {
                        return Err(err(lx.line, "unterminated string"));
                    };
                    match c {
                        '"' => break,
                        '\n' => return Err(err(lx.line, "unterminated string")),
                        '\\' => {
                            let Some((_, e)) = lx.chars.next() else {
                                return Err(err(lx.line, "unterminated string"));
                            };
                            match e {
                                '"' => s.push('"'),
                                '\\' => s.push('\\'),
                                '/' => s.push('/'),
                                'b' => s.push('\u{8}'),
                                'f' => s.push('\u{c}'),
                                'n' => s.push('\n'),
                                'r' => s.push('\r'),
                                't' => s.push('\t'),
                                'u' => {
                                    let mut hex = String::new();
                                    for _ in 0..4 {
                                        hex.push(lx.chars.next().map_or('x', |x| x.1));
                                    }
                                    let cp = u32::from_str_radix(&hex, 16)
                                        .map_err(|_| err(lx.line, "bad \\u escape"))?;
                                    s.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                                }
                                _ => return Err(err(lx.line, "bad escape in string")),
                            }
                        }
                        c => s.push(c),
                    }
                }
                out.push((Tok::Str(s), lx.line));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let mut s = String::from(c);
                let mut float = false;
                while let Some((_, d)) = lx.chars.peek() {
                    let d = *d;
                    if d.is_ascii_digit() {
                        s.push(d);
                    } else if matches!(d, '.' | 'e' | 'E' | '+' | '-') && s.len() < 64 {
                        float = true;
                        s.push(d);
                    } else {
                        break;
                    }
                    lx.chars.next();
                }
                let tok = if float {
                    Tok::Float(s.parse().map_err(|_| err(lx.line, "bad number"))?)
                } else {
                    Tok::Int(s.parse().map_err(|_| err(lx.line, "bad integer"))?)
                };
                out.push((tok, lx.line));
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let mut s = String::from(c);
                while let Some((_, d)) = lx.chars.peek() {
                    if *d == '_' || d.is_ascii_alphanumeric() {
                        s.push(*d);
                        lx.chars.next();
                    } else {
                        break;
                    }
                }
                out.push((Tok::Name(s), lx.line));
            }
            other => return Err(err(lx.line, &format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(1, |t| t.1)
    }

    fn err<T>(&self, m: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            line: self.line(),
            message: m.into(),
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.is_punct(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected '{c}'"))
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Some(Tok::Name(n)) => Ok(n),
            _ => {
                self.pos -= 1;
                self.err("expected a name")
            }
        }
    }

    fn operation(&mut self) -> Result<Operation, ParseError> {
        let mut op = Operation {
            kind: OperationKind::Query,
            name: None,
            variables: Vec::new(),
            selections: Vec::new(),
        };
        if !self.is_punct('{') {
            match self.name()?.as_str() {
                "query" => {}
                "mutation" => op.kind = OperationKind::Mutation,
                "subscription" => return self.err("subscriptions are not supported"),
                "fragment" => return self.err("named fragments are not supported"),
                other => return self.err(format!("unexpected {other:?}")),
            }
            if let Some(Tok::Name(_)) = self.peek() {
                op.name = Some(self.name()?);
            }
            if self.is_punct('(') {
                self.pos += 1;
                while !self.is_punct(')') {
                    self.expect('$')?;
                    let name = self.name()?;
                    self.expect(':')?;
                    let type_text = self.type_ref(0)?;
                    let default = if self.is_punct('=') {
                        self.pos += 1;
                        Some(self.value(0, true)?)
                    } else {
                        None
                    };
                    op.variables.push(VariableDefinition {
                        name,
                        type_text,
                        default,
                    });
                }
                self.pos += 1;
            }
            // Directives on the operation itself are read and ignored.
            self.directives(0)?;
        }
        op.selections = self.selection_set(0)?;
        if self.pos < self.toks.len() {
            return self.err("only one operation per document is supported");
        }
        Ok(op)
    }

    fn type_ref(&mut self, depth: usize) -> Result<String, ParseError> {
        if depth > MAX_DEPTH {
            return self.err("type nested too deeply");
        }
        let mut t = if self.is_punct('[') {
            self.pos += 1;
            let inner = self.type_ref(depth + 1)?;
            self.expect(']')?;
            format!("[{inner}]")
        } else {
            self.name()?
        };
        if self.is_punct('!') {
            self.pos += 1;
            t.push('!');
        }
        Ok(t)
    }

    fn selection_set(&mut self, depth: usize) -> Result<Vec<Selection>, ParseError> {
        if depth > MAX_DEPTH {
            return self.err("selections nested too deeply");
        }
        self.expect('{')?;
        let mut out = Vec::new();
        while !self.is_punct('}') {
            if self.peek().is_none() {
                return self.err("unexpected end of document");
            }
            if self.peek() == Some(&Tok::Spread) {
                self.pos += 1;
                let type_condition = if self.peek() == Some(&Tok::Name("on".into())) {
                    self.pos += 1;
                    Some(self.name()?)
                } else if let Some(Tok::Name(_)) = self.peek() {
                    return self.err("named fragments are not supported");
                } else {
                    None
                };
                self.directives(depth)?;
                let selections = self.selection_set(depth + 1)?;
                out.push(Selection::InlineFragment {
                    type_condition,
                    selections,
                });
                continue;
            }
            let first = self.name()?;
            let (alias, name) = if self.is_punct(':') {
                self.pos += 1;
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let arguments = self.arguments(depth)?;
            let directives = self.directives(depth)?;
            let selections = if self.is_punct('{') {
                self.selection_set(depth + 1)?
            } else {
                Vec::new()
            };
            out.push(Selection::Field(Field {
                alias,
                name,
                arguments,
                directives,
                selections,
            }));
        }
        self.pos += 1;
        if out.is_empty() {
            return self.err("empty selection set");
        }
        Ok(out)
    }

    fn arguments(&mut self, depth: usize) -> Result<Vec<(String, Value)>, ParseError> {
        let mut out = Vec::new();
        if !self.is_punct('(') {
            return Ok(out);
        }
        self.pos += 1;
        while !self.is_punct(')') {
            let name = self.name()?;
            self.expect(':')?;
            out.push((name, self.value(depth + 1, false)?));
        }
        self.pos += 1;
        Ok(out)
    }

    fn directives(&mut self, depth: usize) -> Result<Vec<Directive>, ParseError> {
        let mut out = Vec::new();
        while self.is_punct('@') {
            self.pos += 1;
            let name = self.name()?;
            let arguments = self.arguments(depth)?;
            out.push(Directive { name, arguments });
        }
        Ok(out)
    }

    fn value(&mut self, depth: usize, constant: bool) -> Result<Value, ParseError> {
        if depth > MAX_DEPTH {
            return self.err("value nested too deeply");
        }
        Ok(match self.next() {
            Some(Tok::Punct('$')) if !constant => Value::Variable(self.name()?),
            Some(Tok::Int(i)) => Value::Int(i),
            Some(Tok::Float(f)) => Value::Float(f),
            Some(Tok::Str(s)) => Value::String(s),
            Some(Tok::Name(n)) => match n.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => Value::Enum(n),
            },
            Some(Tok::Punct('[')) => {
                let mut items = Vec::new();
                while !self.is_punct(']') {
                    if self.peek().is_none() {
                        return self.err("unterminated list");
                    }
                    items.push(self.value(depth + 1, constant)?);
                }
                self.pos += 1;
                Value::List(items)
            }
            Some(Tok::Punct('{')) => {
                let mut fields = Vec::new();
                while !self.is_punct('}') {
                    let name = self.name()?;
                    self.expect(':')?;
                    fields.push((name, self.value(depth + 1, constant)?));
                }
                self.pos += 1;
                Value::Object(fields)
            }
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return self.err("expected a value");
            }
        })
    }
}

/// Parses a document holding exactly one operation.
pub fn parse(text: &str) -> Result<Operation, ParseError> {
    if text.chars().count() > MAX_DOCUMENT_CHARS {
        return Err(ParseError {
            line: 1,
            message: format!("document longer than {MAX_DOCUMENT_CHARS} characters"),
        });
    }
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err(ParseError {
            line: 1,
            message: "empty document".into(),
        });
    }
    Parser { toks, pos: 0 }.operation()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_mutation_with_variables_aliases_and_directives() {
        let op = parse(
            r#"mutation Set($input: InventorySetQuantitiesInput!, $n: [String!] = ["available"]) {
                 # comment
                 set: inventorySetQuantities(input: $input) @idempotent(key: "k-1") {
                   inventoryAdjustmentGroup { id changes { name delta } }
                   userErrors { code field message }
                 }
               }"#,
        )
        .unwrap();
        assert_eq!(op.kind, OperationKind::Mutation);
        assert_eq!(op.name.as_deref(), Some("Set"));
        assert_eq!(op.variables[0].type_text, "InventorySetQuantitiesInput!");
        let roots = op.root_fields();
        assert_eq!(roots.len(), 1);
        let f = roots[0];
        assert_eq!(f.name, "inventorySetQuantities");
        assert_eq!(f.response_key(), "set");
        let vars = json!({"input": {"name": "available"}});
        assert_eq!(f.arg("input", &vars), Some(json!({"name": "available"})));
        let key = f.directive("idempotent").unwrap().arguments[0]
            .1
            .resolve(&vars);
        assert_eq!(key, json!("k-1"));
    }

    #[test]
    fn reads_inline_fragments_literals_and_anonymous_queries() {
        let op = parse(
            r#"{ nodes(ids: ["gid://x/1"]) { ... on InventoryItem { id inventoryLevel(locationId: "L") { quantities(names: ["available"]) { quantity } } } }
                 orders(first: 10, sortKey: UPDATED_AT, reverse: false, query: "a:\"b\" \u00e9") { nodes { id } } }"#,
        )
        .unwrap();
        let roots = op.root_fields();
        assert_eq!(
            roots[1].arg("sortKey", &json!({})),
            Some(json!("UPDATED_AT"))
        );
        assert_eq!(roots[1].arg("query", &json!({})), Some(json!("a:\"b\" é")));
        assert!(matches!(
            roots[0].selections[0],
            Selection::InlineFragment { .. }
        ));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "",
            "{",
            "{ a(b: ) }",
            "query { a } query { b }",
            "fragment F on X { a }",
            "{ ...F }",
            "{ a(s: \"unterminated) }",
            "{ a(s: \"\"\"block\"\"\") }",
            "subscription { a }",
            "{ }",
            "{ a ¤ }",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}{}", "{ a ".repeat(100), "}".repeat(100));
        assert!(parse(&deep).is_err());
        assert!(parse(&"{ a }".repeat(30_000)).is_err());
    }
}
