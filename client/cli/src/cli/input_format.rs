//! `produce --input-format`: how each stdin line splits into a record, in
//! the manner of rpk's `-f`: `%k` key, `%v` value, `%h` headers
//! (`name=value` pairs separated by `,`), `%p` partition, and literal text
//! between them (`\t` and `\\` escapes, as in `consume --format`). Each token ends where the literal
//! text after it first occurs; the last token takes the rest of the line.
//! For example `%k\t%v`, `%p:%k=%v`, or `%h|%v`.

use bytes::Bytes;

use super::format_tokens::{Part, tokenize};

/// A part of an input format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Key,
    Value,
    Headers,
    Partition,
}

/// A parsed `--input-format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFormat(Vec<Piece>);

/// One line, split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedLine {
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    pub partition: Option<u32>,
}

/// Parses `--input-format`.
pub fn parse_input_format(s: &str) -> Result<InputFormat, String> {
    let token = |letter| {
        Some(match letter {
            'k' => Piece::Key,
            'v' => Piece::Value,
            'h' => Piece::Headers,
            'p' => Piece::Partition,
            _ => return None,
        })
    };
    let mut pieces: Vec<Piece> = Vec::new();
    for part in tokenize(s, token, "%k %v %h %p %%")? {
        let piece = match part {
            Part::Text(text) => Piece::Text(text),
            Part::Token(token) => {
                if pieces.last().is_some_and(|p| !matches!(p, Piece::Text(_))) {
                    return Err(format!("{s:?}: two tokens need text between them, to tell where one ends"));
                }
                if pieces.contains(&token) {
                    return Err(format!("{s:?} names a token twice"));
                }
                token
            }
        };
        pieces.push(piece);
    }
    if !pieces.contains(&Piece::Value) {
        return Err(format!("{s:?} has no %v (the value)"));
    }
    Ok(InputFormat(pieces))
}

impl InputFormat {
    /// Splits `line` (without its newline) as the format says.
    pub fn parse(&self, line: &Bytes) -> Result<ParsedLine, String> {
        let mut parsed = ParsedLine::default();
        let mut at = 0;
        for (i, piece) in self.0.iter().enumerate() {
            let rest = &line[at..];
            if let Piece::Text(text) = piece {
                if !rest.starts_with(text) {
                    return Err(format!("expected {:?} at byte {at}", String::from_utf8_lossy(text)));
                }
                at += text.len();
                continue;
            }
            let end = match self.0.get(i + 1) {
                Some(Piece::Text(text)) => {
                    find(rest, text).ok_or_else(|| format!("no {:?} after byte {at}", String::from_utf8_lossy(text)))?
                }
                _ => rest.len(),
            };
            let field = line.slice(at..at + end);
            at += end;
            match piece {
                Piece::Key => parsed.key = Some(field),
                Piece::Value => parsed.value = field,
                Piece::Headers => parsed.headers = headers(&field)?,
                Piece::Partition => {
                    let text = std::str::from_utf8(&field).unwrap_or("");
                    parsed.partition = Some(text.parse().map_err(|_| format!("partition {text:?} is not a number"))?);
                }
                Piece::Text(_) => {}
            }
        }
        if at != line.len() {
            return Err(format!("{} bytes left over at the end", line.len() - at));
        }
        Ok(parsed)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `name=value,name=value` (empty: none).
fn headers(field: &Bytes) -> Result<Vec<(String, Bytes)>, String> {
    if field.is_empty() {
        return Ok(Vec::new());
    }
    field
        .split(|&b| b == b',')
        .map(|pair| {
            let eq = pair
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| format!("header {:?} is not name=value", String::from_utf8_lossy(pair)))?;
            let name = std::str::from_utf8(&pair[..eq]).map_err(|_| "a header name is not UTF-8".to_owned())?;
            Ok((name.to_owned(), Bytes::copy_from_slice(&pair[eq + 1..])))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: &str, line: &'static [u8]) -> Result<ParsedLine, String> {
        parse_input_format(format).unwrap().parse(&Bytes::from_static(line))
    }

    #[test]
    fn lines_split_as_the_format_says() {
        let p = parse(r"%k\t%v", b"k1\tv\t1").unwrap();
        assert_eq!((p.key.as_deref(), &p.value[..]), (Some(&b"k1"[..]), &b"v\t1"[..]));
        let p = parse("%p:%k=%v", b"2:user=x=y").unwrap();
        assert_eq!((p.partition, p.key.as_deref(), &p.value[..]), (Some(2), Some(&b"user"[..]), &b"x=y"[..]));
        let p = parse("%h|%v", b"a=1,b=2|body").unwrap();
        assert_eq!(p.headers, vec![("a".into(), Bytes::from_static(b"1")), ("b".into(), Bytes::from_static(b"2"))]);
        assert_eq!(&p.value[..], b"body");
        assert!(parse("%k:%v", b"no separator").is_err());
        assert!(parse("%p:%v", b"x:v").is_err());
        assert!(parse("[%v]", b"[v]!").is_err());
    }

    #[test]
    fn formats_that_cannot_be_split_are_refused() {
        assert!(parse_input_format("%k%v").is_err(), "no text between tokens");
        assert!(parse_input_format("%k:%k").is_err(), "a token twice");
        assert!(parse_input_format("%k").is_err(), "no value");
        assert!(parse_input_format("%x %v").is_err(), "unknown token");
    }
}
