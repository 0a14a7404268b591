//! What the merchant reads when a config file is refused.
//!
//! Every message names the file and, whenever it can be known, the line and column, in the
//! `path:line:col:` form editors and terminals turn into links. Parse and interpolation errors
//! also show the offending line as written (before `${VAR}` substitution, so a secret never
//! appears) with a caret under the offending text. Semantic problems come one per line.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::PathBuf;

/// A place in the file: 1-based line, 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters (not bytes).
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the text).
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: text[line_start..offset].chars().count() + 1,
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// One located message: a parse or interpolation error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is; `None` when the parser could not say.
    pub position: Option<Position>,
    /// What is wrong, in a sentence.
    pub message: String,
    /// The offending line as written in the file (without its line ending).
    pub source_line: String,
    /// How many characters to underline from the column (at least 1).
    pub width: usize,
}

impl Diagnostic {
    /// A message about bytes `span` of `text`.
    pub(crate) fn at(text: &str, span: Option<Range<usize>>, message: String) -> Diagnostic {
        let Some(span) = span else {
            return Diagnostic {
                position: None,
                message,
                source_line: String::new(),
                width: 0,
            };
        };
        let position = Position::of_offset(text, span.start);
        let source_line = text
            .split('\n')
            .nth(position.line - 1)
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_owned();
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let on_line = text[start..end].split('\n').next().unwrap_or("");
        let width = on_line.trim_end_matches('\r').chars().count().max(1);
        Diagnostic {
            position: Some(position),
            message,
            source_line,
            width,
        }
    }

    fn render(&self, origin: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(pos) = self.position else {
            return writeln!(f, "{origin}: {}", self.message);
        };
        writeln!(f, "{origin}:{}:{}: {}", pos.line, pos.column, self.message)?;
        let gutter = " ".repeat(pos.line.to_string().len());
        // Keep tabs so the caret lines up under the text it points at.
        let pad: String = self
            .source_line
            .chars()
            .take(pos.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{} | {}", pos.line, self.source_line)?;
        writeln!(f, "{gutter} | {pad}{}", "^".repeat(self.width))
    }
}

/// One semantic problem: a key path and what is wrong with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, arrays indexed from 0: `channels.ebay_uk.stock.percent`, `rules[2].match`.
    pub key: String,
    /// The rest of the sentence after the key: `must be 0–100, got 140`.
    pub message: String,
    /// Where the key (or its nearest written ancestor) is; filled in by [`crate::config::parse`].
    pub position: Option<Position>,
}

impl Problem {
    /// A problem with `key`, not yet located.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
            position: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.message)
    }
}

/// Why a config file was refused. `Display` is the text for the merchant.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be opened or read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is larger than [`crate::config::MAX_CONFIG_BYTES`].
    TooLarge {
        /// The file.
        origin: String,
        /// Its size in bytes (at least; reading stops past the limit).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not UTF-8.
    NotUtf8 {
        /// The file.
        origin: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
        /// Where that byte is.
        position: Position,
    },
    /// `${VAR}` problems: every missing variable and every misplaced reference.
    Interpolation {
        /// The file.
        origin: String,
        /// One per problem, in file order.
        diagnostics: Vec<Diagnostic>,
    },
    /// TOML syntax errors, unknown keys, wrong types, missing keys.
    Parse {
        /// The file.
        origin: String,
        /// One per problem, in file order.
        diagnostics: Vec<Diagnostic>,
    },
    /// The file parsed but its values do not make sense together.
    Invalid {
        /// The file.
        origin: String,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The located messages of an interpolation or parse error (empty for the other kinds).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Interpolation { diagnostics, .. }
            | ConfigError::Parse { diagnostics, .. } => diagnostics,
            _ => &[],
        }
    }

    /// The problems of a semantic error (empty for the other kinds).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::TooLarge {
                origin,
                size,
                limit,
            } => write!(
                f,
                "{origin}: the file is {size} bytes or more; a config file may be at most {limit} \
                 bytes"
            ),
            ConfigError::NotUtf8 {
                origin,
                offset,
                position,
            } => write!(
                f,
                "{origin}:{}:{}: the file is not valid UTF-8 (first bad byte at offset {offset}); \
                 save it as UTF-8",
                position.line, position.column
            ),
            ConfigError::Interpolation {
                origin,
                diagnostics,
            }
            | ConfigError::Parse {
                origin,
                diagnostics,
            } => {
                for (i, d) in diagnostics.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    d.render(origin, f)?;
                }
                Ok(())
            }
            ConfigError::Invalid { origin, problems } => {
                for p in problems {
                    match p.position {
                        Some(pos) => writeln!(f, "{origin}:{}:{}: {p}", pos.line, pos.column)?,
                        None => writeln!(f, "{origin}: {p}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_not_bytes() {
        let text = "a = 1\né = \"x\"\n";
        assert_eq!(
            Position::of_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        assert_eq!(
            Position::of_offset(text, 6),
            Position { line: 2, column: 1 }
        );
        // `=` on line 2 is byte 9 but character 3.
        assert_eq!(
            Position::of_offset(text, 9),
            Position { line: 2, column: 3 }
        );
        assert_eq!(
            Position::of_offset(text, 999),
            Position { line: 3, column: 1 }
        );
    }

    #[test]
    fn renders_the_line_and_a_caret_under_the_span() {
        let text = "[daemon]\n\tlissten = \"x\"\r\n";
        let d = Diagnostic::at(text, Some(10..17), "unknown field `lissten`".into());
        let e = ConfigError::Parse {
            origin: "c.toml".into(),
            diagnostics: vec![d],
        };
        assert_eq!(
            e.to_string(),
            "c.toml:2:2: unknown field `lissten`\n  |\n2 | \tlissten = \"x\"\n  | \t^^^^^^^\n"
        );
    }

    #[test]
    fn problems_are_one_per_line() {
        let mut located = Problem::new("a.b", "must be 1, got 2");
        located.position = Some(Position { line: 3, column: 5 });
        let e = ConfigError::Invalid {
            origin: "c.toml".into(),
            problems: vec![located, Problem::new("c", "is missing")],
        };
        assert_eq!(
            e.to_string(),
            "c.toml:3:5: a.b must be 1, got 2\nc.toml: c is missing\n"
        );
    }
}
