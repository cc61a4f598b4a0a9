//! A consumer's tag filter applied to what a fetch read: each batch keeps
//! only the records carrying a wanted tag (`goulette_batch::sparse`), and
//! still covers all its offsets, so the consumer moves past what was left
//! out. The work is the broker's (the records left out never cross the
//! network), done on the blocking pool with the read.

use bytes::Bytes;
use goulette_storage::Batch;
use goulette_storage::tags::TagFilter;

/// `batches` through `filter`, and the offset after the last one read: the
/// fetch goes on from there whatever was kept. A batch that does not
/// decode is sent as it is, for the consumer to report (it was checked
/// when written; the broker does not hide damage).
pub fn apply(batches: Vec<Bytes>, filter: &TagFilter) -> (Vec<Bytes>, Option<u64>) {
    let next = batches.last().and_then(|b| goulette_storage::batch::peek_next_offset(b));
    let filtered = batches
        .into_iter()
        .map(|bytes| {
            let kept = Batch::parse_sparse(bytes.clone()).and_then(|batch| batch.retain(|r| filter.matches(&r.record)));
            kept.map_or(bytes, Batch::into_bytes)
        })
        .collect();
    (filtered, next)
}

#[cfg(test)]
mod tests {
    use goulette_storage::tags::TAG_HEADER;
    use goulette_storage::{BatchBuilder, Compression, Record};

    use super::*;

    fn stored(base: u64, tags: &[&str]) -> Bytes {
        let mut builder = BatchBuilder::new(Compression::None);
        for tag in tags {
            let headers = match *tag {
                "" => Vec::new(),
                t => vec![(TAG_HEADER.to_owned(), Bytes::from(t.to_owned()))],
            };
            builder.push(&Record { value: Bytes::from(tag.to_string()), headers, ..Record::default() });
        }
        Batch::parse(builder.build().unwrap()).unwrap().stamped(base, 1).into_bytes()
    }

    #[test]
    fn only_wanted_records_go_out_and_the_fetch_goes_on_past_the_read() {
        let filter = TagFilter::parse("A || B").unwrap();
        let (out, next) = apply(vec![stored(0, &["A", "C", ""]), stored(3, &["C", "C"]), stored(5, &["B"])], &filter);
        assert_eq!(next, Some(6));
        let decoded: Vec<Vec<u64>> = out
            .iter()
            .map(|b| Batch::parse_sparse(b.clone()).unwrap().records().unwrap().iter().map(|r| r.offset).collect())
            .collect();
        assert_eq!(decoded, [vec![0], vec![], vec![5]]);
        let ends: Vec<u64> = out.iter().map(|b| Batch::parse_sparse(b.clone()).unwrap().next_offset()).collect();
        assert_eq!(ends, [3, 5, 6], "each batch still covers its offsets");
    }
}
