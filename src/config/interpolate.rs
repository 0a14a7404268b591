//! `${VAR}` interpolation, on the file's text, before TOML parsing.
//!
//! Working on text keeps TOML's line numbers (a value never adds a line: it is escaped), but text
//! substitution could let a value break the document (`"` or `\` in a password). So the scanner
//! follows TOML's lexical contexts and substitutes only inside basic strings (`"…"`, `"""…"""`),
//! escaping the value for them:
//!
//! - comments are copied untouched (a `${VAR}` in a comment needs no variable);
//! - `${VAR}` in a literal string (`'…'`, `'''…'''`) or outside any string is refused, because it
//!   cannot be substituted safely there;
//! - `$${` stands for a literal `${` anywhere outside comments;
//! - every missing variable is reported, with its position, in one go.
//!
//! The result remembers where each replacement happened ([`Interpolated::original_offset`]), so
//! later errors point at the merchant's text, and which values came from the environment, so an
//! error message can hide them.

use std::ops::Range;

/// The interpolated text plus the map back to the original.
#[derive(Debug)]
pub(crate) struct Interpolated {
    /// The text to parse.
    pub(crate) text: String,
    /// Replacements in order of position.
    regions: Vec<Region>,
}

/// One replacement: `orig` in the file became `out` in [`Interpolated::text`].
#[derive(Debug)]
struct Region {
    orig: Range<usize>,
    out: Range<usize>,
    /// The substituted value, for redaction; `None` for `$${` → `${`.
    value: Option<String>,
}

/// A problem found while interpolating, at a byte range of the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub(crate) span: Range<usize>,
    pub(crate) message: String,
}

impl Interpolated {
    /// The offset in the original text that `offset` in [`Interpolated::text`] came from. Inside a
    /// replacement it maps to the replacement's start (`end == true`: its end).
    pub(crate) fn original_offset(&self, offset: usize, end: bool) -> usize {
        let i = self.regions.partition_point(|r| r.out.start <= offset);
        if i == 0 {
            return offset;
        }
        let r = &self.regions[i - 1];
        if offset < r.out.end || (end && offset == r.out.end && offset > r.out.start) {
            if end { r.orig.end } else { r.orig.start }
        } else {
            offset - r.out.end + r.orig.end
        }
    }

    /// `message` with every environment value substituted inside `span` (of the interpolated
    /// text) replaced by `***`, so an error about a secret's position never shows the secret.
    pub(crate) fn redact(&self, message: &str, span: &Range<usize>) -> String {
        let mut message = message.to_owned();
        for r in &self.regions {
            let overlaps = r.out.start < span.end.max(span.start + 1) && span.start < r.out.end;
            if let (true, Some(v)) = (overlaps, &r.value)
                && !v.is_empty()
            {
                message = message.replace(v.as_str(), "***");
                let escaped = v.escape_debug().to_string();
                if escaped != *v {
                    message = message.replace(&escaped, "***");
                }
            }
        }
        message
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Outside,
    Comment,
    Basic,
    MultiBasic,
    Literal,
    MultiLiteral,
}

/// Substitutes `${VAR}` in `text` using `env`; every problem at once on failure.
pub(crate) fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, Vec<Issue>> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut regions = Vec::new();
    let mut issues = Vec::new();
    let mut copied = 0; // text[..copied] is already in `out`
    let mut ctx = Context::Outside;
    let mut i = 0;
    let at = |i: usize, pat: &str| bytes[i..].starts_with(pat.as_bytes());

    while i < bytes.len() {
        let b = bytes[i];
        match ctx {
            Context::Comment => {
                if b == b'\n' {
                    ctx = Context::Outside;
                }
                i += 1;
                continue;
            }
            Context::Outside => match b {
                b'#' => {
                    ctx = Context::Comment;
                    i += 1;
                    continue;
                }
                b'"' if at(i, "\"\"\"") => {
                    ctx = Context::MultiBasic;
                    i += 3;
                    continue;
                }
                b'"' => {
                    ctx = Context::Basic;
                    i += 1;
                    continue;
                }
                b'\'' if at(i, "'''") => {
                    ctx = Context::MultiLiteral;
                    i += 3;
                    continue;
                }
                b'\'' => {
                    ctx = Context::Literal;
                    i += 1;
                    continue;
                }
                _ => {}
            },
            Context::Basic => match b {
                b'\\' => {
                    i += 2; // an escape: `\"` does not end the string, `\$` is TOML's problem
                    continue;
                }
                b'"' | b'\n' => {
                    ctx = Context::Outside;
                    i += 1;
                    continue;
                }
                _ => {}
            },
            Context::MultiBasic => match b {
                b'\\' => {
                    i += 2;
                    continue;
                }
                b'"' if at(i, "\"\"\"") => {
                    // Up to two quotes may precede the closing three: `""""` ends with one `"`.
                    i += bytes[i..].iter().take_while(|&&c| c == b'"').count();
                    ctx = Context::Outside;
                    continue;
                }
                _ => {}
            },
            Context::Literal => {
                if b == b'\'' || b == b'\n' {
                    ctx = Context::Outside;
                    i += 1;
                    continue;
                }
            }
            Context::MultiLiteral => {
                if at(i, "'''") {
                    i += bytes[i..].iter().take_while(|&&c| c == b'\'').count();
                    ctx = Context::Outside;
                    continue;
                }
            }
        }

        // Only `$` is left to look at.
        if b != b'$' {
            i += 1;
            continue;
        }
        if at(i, "$${") {
            out.push_str(&text[copied..i]);
            let start = out.len();
            out.push_str("${");
            regions.push(Region {
                orig: i..i + 3,
                out: start..out.len(),
                value: None,
            });
            i += 3;
            copied = i;
            continue;
        }
        if !at(i, "${") {
            i += 1;
            continue;
        }
        let name_start = i + 2;
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        let name_end = name_start + name_len;
        let name = &text[name_start..name_end];
        let valid_name = name_len > 0 && !bytes[name_start].is_ascii_digit();
        if !valid_name || bytes.get(name_end) != Some(&b'}') {
            issues.push(Issue {
                span: i..name_end.max(i + 2),
                message: "`${` must be followed by a variable name (letters, digits, `_`; not \
                          starting with a digit) and `}`; write `$${` for a literal `${`"
                    .to_owned(),
            });
            i += 2;
            continue;
        }
        let end = name_end + 1;
        match ctx {
            Context::Basic | Context::MultiBasic => match env(name) {
                Some(value) => {
                    out.push_str(&text[copied..i]);
                    let start = out.len();
                    escape_basic(&value, &mut out);
                    regions.push(Region {
                        orig: i..end,
                        out: start..out.len(),
                        value: Some(value),
                    });
                    copied = end;
                }
                None => issues.push(Issue {
                    span: i..end,
                    message: format!("environment variable {name} is not set"),
                }),
            },
            Context::Literal | Context::MultiLiteral => issues.push(Issue {
                span: i..end,
                message: format!(
                    "${{{name}}} is inside a literal '…' string, where it cannot be substituted \
                     safely; use a double-quoted string: \"${{{name}}}\""
                ),
            }),
            Context::Outside | Context::Comment => issues.push(Issue {
                span: i..end,
                message: format!(
                    "${{{name}}} is outside a string; put it in double quotes: \"${{{name}}}\""
                ),
            }),
        }
        i = end;
    }
    out.push_str(&text[copied..]);

    if issues.is_empty() {
        Ok(Interpolated { text: out, regions })
    } else {
        Err(issues)
    }
}

/// Escapes `value` for the inside of a TOML basic string (`"…"` or `"""…"""`): backslash, quote
/// and every control character, so the value cannot end the string or add a line.
fn escape_basic(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t".to_owned()),
            "NASTY" => Some("a\"b\\c\nd\te\u{7}f'''g".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, Vec<Issue>> {
        interpolate(text, &env).map(|i| i.text)
    }

    #[test]
    fn substitutes_in_basic_strings_only() {
        assert_eq!(run("a = \"${TOKEN}\"").unwrap(), "a = \"s3cr3t\"");
        assert_eq!(run("a = \"x-${TOKEN}-y\"").unwrap(), "a = \"x-s3cr3t-y\"");
        assert_eq!(
            run("a = \"\"\"\n${TOKEN}\"\"\"").unwrap(),
            "a = \"\"\"\ns3cr3t\"\"\""
        );
        assert_eq!(run("a = \"${EMPTY}\"").unwrap(), "a = \"\"");
    }

    #[test]
    fn leaves_comments_alone() {
        let text = "# export ${NOT_SET} first\na = 1 # or ${ALSO_NOT_SET}\n";
        assert_eq!(run(text).unwrap(), text);
    }

    #[test]
    fn escapes_values_so_they_cannot_break_the_string() {
        let out = run("a = \"${NASTY}\"").unwrap();
        assert_eq!(out, r#"a = "a\"b\\c\nd\te\u0007f'''g""#);
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["a"].as_str(), env("NASTY").as_deref());
    }

    #[test]
    fn dollar_dollar_brace_is_a_literal() {
        assert_eq!(run("a = \"$${TOKEN}\"").unwrap(), "a = \"${TOKEN}\"");
        assert_eq!(run("a = '$${X}'").unwrap(), "a = '${X}'");
        assert_eq!(run("a = \"$$ and $x\"").unwrap(), "a = \"$$ and $x\"");
    }

    #[test]
    fn an_escaped_quote_does_not_end_the_string() {
        assert_eq!(run(r#"a = "\"${TOKEN}""#).unwrap(), r#"a = "\"s3cr3t""#);
        // The `#` is inside the string, so this is not a comment and the variable is needed.
        let issues = run("a = \"#${MISSING}\"").unwrap_err();
        assert_eq!(issues[0].message, "environment variable MISSING is not set");
    }

    #[test]
    fn reports_every_missing_variable_with_its_span() {
        let text = "a = \"${ONE}\"\nb = \"${TOKEN}\"\nc = \"${TWO}${ONE}\"\n";
        let issues = run(text).unwrap_err();
        let found: Vec<_> = issues.iter().map(|i| &text[i.span.clone()]).collect();
        assert_eq!(found, ["${ONE}", "${TWO}", "${ONE}"]);
    }

    #[test]
    fn refuses_literal_strings_and_bare_values() {
        let issues = run("a = '${TOKEN}'\nb = '''\n${TOKEN}'''\nc = ${TOKEN}\n").unwrap_err();
        assert_eq!(issues.len(), 3);
        assert!(issues[0].message.contains("literal"), "{issues:?}");
        assert!(issues[1].message.contains("literal"), "{issues:?}");
        assert!(issues[2].message.contains("outside a string"), "{issues:?}");
    }

    #[test]
    fn refuses_malformed_references() {
        for text in [
            "a = \"${}\"",
            "a = \"${1X}\"",
            "a = \"${X\"",
            "a = \"${X-Y}\"",
        ] {
            let issues = run(text).unwrap_err();
            assert!(issues[0].message.contains("`$${`"), "{text}: {issues:?}");
        }
    }

    #[test]
    fn multi_line_strings_end_at_the_last_of_their_quotes() {
        // `""""` closes with one quote of content; what follows is outside again.
        let issues = run("a = \"\"\"x\"\"\"\" \nb = ${TOKEN}").unwrap_err();
        assert!(issues[0].message.contains("outside a string"), "{issues:?}");
    }

    #[test]
    fn maps_offsets_back_to_the_original() {
        let text = "a = \"${TOKEN}\" x";
        let i = interpolate(text, &env).unwrap();
        assert_eq!(i.text, "a = \"s3cr3t\" x");
        assert_eq!(i.original_offset(2, false), 2);
        assert_eq!(i.original_offset(5, false), 5); // start of the value
        assert_eq!(i.original_offset(8, false), 5); // inside it
        assert_eq!(i.original_offset(11, true), 13); // its end
        assert_eq!(i.original_offset(11, false), 13); // the closing quote
        assert_eq!(i.original_offset(13, false), 15);
    }

    proptest::proptest! {
        /// Whatever a variable holds arrives byte for byte, in both kinds of basic string.
        #[test]
        fn any_value_round_trips(value in "\\PC*|[\"\\\\\n\r\t\u{0}-\u{1f}\u{7f}'$#{}]*") {
            let env = |_: &str| Some(value.clone());
            let out = interpolate("a = \"${V}\"\nb = \"\"\"${V}\"\"\"\n", &env).unwrap();
            let parsed: toml::Table = toml::from_str(&out.text).unwrap();
            proptest::prop_assert_eq!(parsed["a"].as_str(), Some(value.as_str()));
            proptest::prop_assert_eq!(parsed["b"].as_str(), Some(value.as_str()));
            proptest::prop_assert_eq!(out.text.lines().count(), 2, "a value added a line");
        }

        /// Arbitrary text never panics the scanner, and offsets map back inside the original.
        #[test]
        fn arbitrary_text_is_handled(text in "[ -~\n'\"#$\\{}é]{0,200}") {
            let env = |name: &str| name.len().is_multiple_of(2).then(|| "v\"\\".to_owned());
            if let Ok(out) = interpolate(&text, &env) {
                for offset in 0..=out.text.len() {
                    proptest::prop_assert!(out.original_offset(offset, false) <= text.len());
                    proptest::prop_assert!(out.original_offset(offset, true) <= text.len());
                }
            }
        }
    }

    #[test]
    fn redacts_values_within_the_span_only() {
        let text = "a = \"${TOKEN}\"\nb = \"s3cr3t\"";
        let i = interpolate(text, &env).unwrap();
        let msg = "invalid type: string \"s3cr3t\", expected u32";
        assert_eq!(
            i.redact(msg, &(4..12)),
            "invalid type: string \"***\", expected u32"
        );
        assert_eq!(i.redact(msg, &(17..25)), msg);
    }
}
