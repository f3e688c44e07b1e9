//! Encoded records into datagrams, for both framings: every record in exactly
//! one datagram, in order and whole; no datagram over the limit unless it is
//! one record marked oversize; none sent while the next record still fitted.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use trapstream::transport::{Datagram, Framing, Packer};

#[derive(Debug, Arbitrary)]
struct Input {
    max: u16,
    records: Vec<Vec<u8>>,
}

const MIN: usize = 64;
const MAX: usize = 65507;

/// (bytes, records, oversize) of each datagram handed over.
type Sent = Vec<(Vec<u8>, usize, bool)>;

fn pack(framing: Framing, max: usize, records: &[Vec<u8>]) -> Sent {
    let mut sent = Vec::new();
    let mut packer = Packer::new(framing, max);
    let mut emit = |d: Datagram<'_>| {
        sent.push((d.bytes.to_vec(), d.records, d.oversize));
        Ok(())
    };
    for r in records {
        packer.push(r, &mut emit).expect("emit never fails here");
    }
    packer.flush(&mut emit).expect("emit never fails here");
    assert_eq!(packer.pending_records(), 0, "records left after the final flush");
    sent
}

/// The exact bytes a datagram of these records must be.
fn framed(framing: Framing, records: &[Vec<u8>]) -> Vec<u8> {
    match framing {
        Framing::JsonArray => {
            let mut out = b"[".to_vec();
            out.extend(records.join(&b","[..]));
            out.push(b']');
            out
        }
        Framing::Lines => records.iter().flat_map(|r| r.iter().copied().chain([b'\n'])).collect(),
    }
}

fuzz_target!(|input: Input| {
    let max = MIN + usize::from(input.max) % (MAX - MIN + 1);
    // Encoders never put a newline in a record: Lines framing relies on it.
    let records: Vec<Vec<u8>> =
        input.records.into_iter().map(|r| r.into_iter().filter(|&b| b != b'\n').collect()).collect();
    for framing in [Framing::JsonArray, Framing::Lines] {
        let sent = pack(framing, max, &records);
        let mut next = 0;
        for (i, (bytes, count, oversize)) in sent.iter().enumerate() {
            assert!(*count >= 1, "{framing:?}: datagram {i} is empty");
            let mine = records.get(next..next + count).unwrap_or_else(|| {
                panic!("{framing:?}: datagram {i} claims {count} records, {} left", records.len() - next)
            });
            assert!(*bytes == framed(framing, mine), "{framing:?}: datagram {i} is not its records, framed");
            if *oversize {
                assert!(
                    *count == 1 && bytes.len() > max,
                    "{framing:?}: datagram {i} marked oversize wrongly"
                );
            } else {
                assert!(bytes.len() <= max, "{framing:?}: datagram {i} is {} bytes > {max}", bytes.len());
            }
            // Sent early? Only when the next record would not have fitted.
            if records.len() > next + count {
                let grown = framed(framing, &records[next..=next + count]).len();
                assert!(
                    *oversize || grown > max,
                    "{framing:?}: datagram {i} sent with room for the next record"
                );
            }
            next += count;
        }
        assert_eq!(next, records.len(), "{framing:?}: records lost");
    }
});
