//! The bodies of the fuzz targets `torchscript_source` and `torchscript_archive`
//! (`plugins/orc-ai/fuzz`), replayed from their corpus and regressions by `cargo test`.

/// Source of any bytes: checked without panicking.
pub fn source(data: &[u8]) {
    let _ = crate::source::check(&String::from_utf8_lossy(data));
}

/// An archive of any bytes: read and checked without panicking, and never more code
/// than the bound.
pub fn archive(data: &[u8]) {
    if let Ok(entries) = crate::archive::code_entries(data) {
        assert!(
            entries
                .iter()
                .all(|(_, code)| code.len() <= crate::archive::MAX_CODE_BYTES)
        );
    }
    let _ = crate::archive::check(data, false);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_corpus_input_and_every_crash_found_is_replayed() {
        let fuzz = concat!(env!("CARGO_MANIFEST_DIR"), "/../orc-ai/fuzz");
        for (target, run) in [
            ("torchscript_source", super::source as fn(&[u8])),
            ("torchscript_archive", super::archive),
        ] {
            let mut n = 0;
            for dir in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(format!("{fuzz}/{dir}/{target}")) else {
                    continue;
                };
                for f in entries.flatten() {
                    let data = std::fs::read(f.path()).unwrap();
                    assert!(
                        std::panic::catch_unwind(|| run(&data)).is_ok(),
                        "{}",
                        f.path().display()
                    );
                    n += 1;
                }
            }
            assert!(n > 0, "no seed corpus for {target}");
        }
    }
}
