//! Tags: labels a producer puts on a record, which a consumer filters on
//! at the broker (RocketMQ's tags).
//!
//! A record's tags are its headers named [`TAG_HEADER`], one tag each (a
//! record may carry several). A filter is `*` (every record, tagged or
//! not) or tags joined by `||` (records carrying at least one of them;
//! an untagged record matches only `*`). Tags are case-sensitive, and
//! hold no spaces and no `|`.

use crate::batch::Record;

/// The header that carries one tag.
pub const TAG_HEADER: &str = "goulette-tag";

/// Filters longer than this are refused (they are parsed for every fetch).
const MAX_FILTER_LEN: usize = 4096;

/// Which tags a consumer wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFilter {
    /// `*`: every record.
    All,
    /// Records with at least one of these tags.
    Any(Vec<String>),
}

impl TagFilter {
    /// Parses `*` or `A || B || …`; the error says what is wrong.
    pub fn parse(expression: &str) -> Result<TagFilter, String> {
        if expression.len() > MAX_FILTER_LEN {
            return Err(format!("a tag filter is at most {MAX_FILTER_LEN} bytes"));
        }
        let expression = expression.trim();
        if expression == "*" {
            return Ok(TagFilter::All);
        }
        let mut tags = Vec::new();
        for tag in expression.split("||").map(str::trim) {
            check_tag(tag).map_err(|why| format!("tag filter {expression:?}: {why} (write `*` or `A || B`)"))?;
            tags.push(tag.to_owned());
        }
        // One spelling per filter (order and repeats do not change what it
        // takes), so that a group can compare its members' filters.
        tags.sort();
        tags.dedup();
        Ok(TagFilter::Any(tags))
    }

    /// Whether `record` passes.
    pub fn matches(&self, record: &Record) -> bool {
        match self {
            TagFilter::All => true,
            TagFilter::Any(wanted) => record
                .headers
                .iter()
                .any(|(name, value)| name == TAG_HEADER && wanted.iter().any(|w| w.as_bytes() == value.as_ref())),
        }
    }
}

impl std::fmt::Display for TagFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagFilter::All => f.write_str("*"),
            TagFilter::Any(tags) => f.write_str(&tags.join(" || ")),
        }
    }
}

/// A tag a producer may set: not empty, at most 255 bytes, no whitespace,
/// no `|` and not `*`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("an empty tag".into());
    }
    if tag.len() > 255 {
        return Err(format!("tag {tag:?} is longer than 255 bytes"));
    }
    if tag == "*" || tag.chars().any(|c| c.is_whitespace() || c == '|') {
        return Err(format!("tag {tag:?} holds a space, `|` or is `*`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn tagged(tags: &[&str]) -> Record {
        let mut headers = vec![("other".to_owned(), Bytes::from("TagA"))];
        headers.extend(tags.iter().map(|t| (TAG_HEADER.to_owned(), Bytes::from(t.to_string()))));
        Record { headers, ..Record::default() }
    }

    #[test]
    fn a_filter_takes_records_with_any_of_its_tags_and_star_takes_all() {
        let filter = TagFilter::parse(" TagB ||TagA|| TagB ").unwrap();
        assert_eq!(filter, TagFilter::Any(vec!["TagA".into(), "TagB".into()]));
        assert_eq!(filter.to_string(), "TagA || TagB", "one spelling, whatever the order");
        assert!(filter.matches(&tagged(&["TagA"])));
        assert!(filter.matches(&tagged(&["TagC", "TagB"])));
        assert!(!filter.matches(&tagged(&["TagC"])));
        assert!(!filter.matches(&tagged(&[])), "an untagged record matches only *");
        assert!(!filter.matches(&tagged(&["taga"])), "case-sensitive");
        assert!(TagFilter::parse("*").unwrap().matches(&tagged(&[])));
    }

    #[test]
    fn bad_filters_and_tags_are_refused_saying_why() {
        for bad in ["", "A ||", "A | B", "A && B", "A B", "*||A"] {
            let e = TagFilter::parse(bad).unwrap_err();
            assert!(e.contains("tag filter"), "{bad:?}: {e}");
        }
        assert!(TagFilter::parse(&"A||".repeat(2000)).is_err());
        assert!(check_tag("ok-tag.1").is_ok());
        assert!(check_tag("a b").is_err() && check_tag("*").is_err() && check_tag(&"x".repeat(256)).is_err());
    }
}
