//! Checks shared by the fuzz targets: what every encoded record must look
//! like, whatever the kernel (or a corrupted ring buffer) handed over.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use trapstream::capture::DropReasons;
use trapstream::cli::Format;
use trapstream::config::TaxonomyOverride;
use trapstream::encode::{Context, Encoder};
use trapstream::netdb::NetDb;
use trapstream::record::{Origin, Record};

/// The original's keys, in the original's order: dashboards depend on them.
pub const SEED_KEYS: [&str; 9] = [
    "deviceIP",
    "ingressPort",
    "description",
    "severity",
    "dropType",
    "dropReason",
    "timestamp",
    "message",
    "packet",
];

const SEVERITIES: [&str; 5] = ["Critical", "Error", "Warning", "Notice", "Info"];

thread_local! {
    // Built once: /etc/services and the kernel's BTF are read at start-up in
    // the agent too, and re-reading them per input would drown the fuzzer.
    static CONTEXT: RefCell<Context> = RefCell::new(Context {
        device_ip: "10.5.1.101".into(),
        netdb: NetDb::load(),
        drop_reasons: libbpf_rs::btf::Btf::from_vmlinux()
            .map(|btf| DropReasons::from_btf(&btf))
            .unwrap_or_default(),
        taxonomy: HashMap::new(),
    });
}

/// Encodes `rec` in every format and checks each output. `extra` (the input's
/// bytes past the record) becomes a configuration-file override of the
/// record's trap texts: operators write those, so they may hold anything.
pub fn check_record(rec: &Record, extra: &[u8]) {
    static SELF_TEST: std::sync::Once = std::sync::Once::new();
    SELF_TEST.call_once(self_test);
    CONTEXT.with(|cell| {
        let mut ctx = cell.borrow_mut();
        ctx.taxonomy.clear();
        if let (Origin::Devlink(trap), Some((&pick, text))) = (&rec.origin, extra.split_first()) {
            let text = String::from_utf8_lossy(text);
            let mut parts = text.splitn(3, '\u{1f}').map(str::to_string);
            let overrides = TaxonomyOverride {
                description: parts.next(),
                drop_reason: parts.next(),
                message: parts.next(),
                // The file's severity is one of five names; anything else is refused there.
                severity: (pick & 0x80 != 0).then(|| SEVERITIES[usize::from(pick) % 5].to_string()),
            };
            ctx.taxonomy.insert(trap.trap_name.as_str().to_string(), overrides);
        }
        check_json(&ctx, rec);
        check_influx(&ctx, rec);
        check_text(&ctx, rec);
    });
}

fn encode(format: Format, ctx: &Context, rec: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(format).encode(ctx, rec, &mut out);
    out
}

fn check_json(ctx: &Context, rec: &Record) {
    let out = encode(Format::Json, ctx, rec);
    let text = std::str::from_utf8(&out).unwrap_or_else(|e| panic!("JSON is not UTF-8 ({e}): {out:?}"));
    // --stdout prints one object per line: a raw newline would split it.
    assert!(!text.contains(['\n', '\r']), "JSON record spans lines: {text}");
    if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        panic!("JSON does not parse ({e}): {text}");
    }
    let Keys(keys) =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("JSON is not an object ({e}): {text}"));
    assert!(
        keys.len() >= SEED_KEYS.len() && keys[..SEED_KEYS.len()] == SEED_KEYS,
        "seed keys out of order: {keys:?}"
    );
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "duplicate keys: {keys:?}");
}

fn check_influx(ctx: &Context, rec: &Record) {
    let out = encode(Format::Influx, ctx, rec);
    let text = std::str::from_utf8(&out).unwrap_or_else(|e| panic!("Influx is not UTF-8 ({e}): {out:?}"));
    if let Err(problem) = check_influx_line(text) {
        panic!("Influx line: {problem}: {text}");
    }
}

fn check_text(ctx: &Context, rec: &Record) {
    let out = encode(Format::Text, ctx, rec);
    let text = std::str::from_utf8(&out).unwrap_or_else(|e| panic!("text is not UTF-8 ({e}): {out:?}"));
    assert!(!text.is_empty(), "empty text line");
}

/// Top-level keys of a JSON object, in document order.
struct Keys(Vec<String>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
        struct KeysVisitor;
        impl<'de> Visitor<'de> for KeysVisitor {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(KeysVisitor)
    }
}

/// One section of a line: its pieces split at unescaped commas.
type Pieces<'a> = Vec<&'a str>;

/// Checks one InfluxDB line as a parser would read it: the measurement and
/// tags up to the first unescaped space, the fields up to the next one outside
/// a double-quoted string, then a timestamp. An escape the encoder forgot
/// (a value ending in a lone backslash, a bare space) moves a delimiter, and
/// the sections no longer come out right.
pub fn check_influx_line(line: &str) -> Result<(), String> {
    if line.contains(['\n', '\r']) {
        return Err("more than one line".into());
    }
    if !line.starts_with("DroppedPackets,") {
        return Err("does not start with \"DroppedPackets,\"".into());
    }
    let bytes = line.as_bytes();
    let mut sections: Vec<Pieces<'_>> = vec![Vec::new()];
    let (mut start, mut i, mut in_string) = (0, 0, false);
    while i < bytes.len() {
        let b = bytes[i];
        let fields = sections.len() == 2;
        match b {
            b'\\' => {
                if i + 1 == bytes.len() {
                    return Err("ends in a lone backslash".into());
                }
                i += 2;
                continue;
            }
            b'"' if fields => in_string = !in_string,
            _ if in_string => {}
            b',' | b' ' => {
                sections.last_mut().expect("a section").push(&line[start..i]);
                start = i + 1;
                if b == b' ' {
                    if sections.len() == 3 {
                        return Err("a third unescaped space".into());
                    }
                    sections.push(Vec::new());
                }
            }
            _ => {}
        }
        i += 1;
    }
    if in_string {
        return Err("unterminated string".into());
    }
    sections.last_mut().expect("a section").push(&line[start..]);
    let [tags, fields, timestamp] = &sections[..] else {
        return Err(format!("{} space-separated sections, not 3", sections.len()));
    };
    if tags[0] != "DroppedPackets" {
        return Err(format!("measurement {:?}", tags[0]));
    }
    for tag in &tags[1..] {
        let (key, value) = split_pair(tag).ok_or_else(|| format!("tag {tag:?} is not key=value"))?;
        if key.is_empty() || value.is_empty() || unescaped(value, b'=') {
            return Err(format!("tag {tag:?}"));
        }
    }
    if fields.is_empty() {
        return Err("no fields".into());
    }
    for field in fields {
        let (key, value) = split_pair(field).ok_or_else(|| format!("field {field:?} is not key=value"))?;
        if key.is_empty() || !field_value(value) {
            return Err(format!("field {field:?}"));
        }
    }
    match timestamp[..] {
        [ts] if !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(format!("timestamp {timestamp:?}")),
    }
}

/// Key and value at the first unescaped '='.
fn split_pair(piece: &str) -> Option<(&str, &str)> {
    let bytes = piece.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' => return Some((&piece[..i], &piece[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

fn unescaped(text: &str, wanted: u8) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == wanted => return true,
            _ => i += 1,
        }
    }
    false
}

fn field_value(v: &str) -> bool {
    if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        // Inside, a quote only ever appears escaped.
        let bytes = inner.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if i + 1 < bytes.len() => i += 2,
                b'\\' | b'"' => return false,
                _ => i += 1,
            }
        }
        return true;
    }
    if let Some(int) = v.strip_suffix('i') {
        return int.strip_prefix('-').unwrap_or(int).parse::<u64>().is_ok();
    }
    matches!(v, "true" | "false") || v.parse::<f64>().is_ok_and(f64::is_finite)
}

/// The checker must tell good lines from bad, or a clean run proves nothing:
/// checked once per fuzzing process, before the first input.
fn self_test() {
    let good = r#"DroppedPackets,description=a\ b\,c\=d,x=\\ f="q\"\\ x",n=1i,b=true 17"#;
    assert_eq!(check_influx_line(good), Ok(()), "the checker rejects a good line");
    for bad in [
        r#"DroppedPackets,d=a\ f=1i 17"#,    // lost its space: one section short
        r#"DroppedPackets,d=a b f=1i 17"#,   // unescaped space in a tag
        r#"DroppedPackets,d=a\\\ f=1i 17"#,  // a backslash that swallows the delimiter
        r#"DroppedPackets,d=a f="x" y" 17"#, // a quote not escaped
        r#"DroppedPackets,d=a f=1i 17 18"#,  // a third space
        r#"DroppedPackets,d=a f=1i 1.7"#,    // not a timestamp
        r#"DroppedPackets,d= f=1i 17"#,      // empty tag value
        "DroppedPackets,d=a f=1i 17\nDroppedPackets,d=a f=1i 18",
    ] {
        assert!(check_influx_line(bad).is_err(), "the checker accepts: {bad}");
    }
}
