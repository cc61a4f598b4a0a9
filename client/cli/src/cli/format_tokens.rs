//! The one reader of the `%`-token strings of `consume --format` and
//! `produce --input-format`: literal text (with `\n`, `\t`, `\\` escapes and
//! `%%` for a percent sign) between tokens `%X`, each X a letter the caller
//! knows.

/// A part of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part<T> {
    Text(Vec<u8>),
    Token(T),
}

/// Splits `s` into text and tokens; `token` maps a letter to its token
/// (`None`: unknown, an error naming `known`, the list of tokens).
pub(super) fn tokenize<T>(s: &str, token: impl Fn(char) -> Option<T>, known: &str) -> Result<Vec<Part<T>>, String> {
    let mut parts = Vec::new();
    let mut text = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('%') => text.push(b'%'),
                Some(letter) => match token(letter) {
                    Some(t) => {
                        if !text.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                        }
                        parts.push(Part::Token(t));
                    }
                    None => return Err(format!("unknown token %{letter} in {s:?} (tokens: {known})")),
                },
                None => return Err(format!("{s:?} ends in a lone % (%% is a percent sign)")),
            },
            '\\' => match chars.next() {
                Some('n') => text.push(b'\n'),
                Some('t') => text.push(b'\t'),
                Some('\\') => text.push(b'\\'),
                Some(other) => text.extend(format!("\\{other}").as_bytes()),
                None => text.push(b'\\'),
            },
            c => text.extend(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_and_tokens_come_apart() {
        let parts = tokenize(r"a%x\t%%b%y\n", |c| "xy".contains(c).then_some(c), "%x %y").unwrap();
        assert_eq!(
            parts,
            vec![
                Part::Text(b"a".to_vec()),
                Part::Token('x'),
                Part::Text(b"\t%b".to_vec()),
                Part::Token('y'),
                Part::Text(b"\n".to_vec())
            ]
        );
        assert!(tokenize("%z", |_| None::<char>, "none").unwrap_err().contains("%z"));
        assert!(tokenize("50%", |_| None::<char>, "none").is_err());
    }
}
