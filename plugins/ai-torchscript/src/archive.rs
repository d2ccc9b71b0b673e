//! A look inside a TorchScript archive before libtorch loads it: the archive is a zip
//! whose `code/` entries are TorchScript source that libtorch compiles while loading, and
//! whose objects' `__setstate__` methods run while loading. So the source is checked for
//! nesting bounds ([`crate::source::check`]) and, unless unsafe operations are allowed,
//! for file and network operations, before any of it reaches libtorch.
//!
//! Only what is needed is read, every offset and length checked against the blob: the
//! central directory (found from its end record), then each `.py` entry's local header
//! and data, inflated (`torch.jit.save` deflates code) up to the size the directory
//! declares and never beyond [`MAX_CODE_BYTES`].

use std::borrow::Cow;

/// The largest code file inflated for inspection.
pub const MAX_CODE_BYTES: usize = 64 << 20;

/// Source fragments that name file or network operations (as `torch.jit.save` prints
/// them); checked in archive code before loading, since `__setstate__` runs during load.
/// `torch.classes.<namespace>` is refused too unless the namespace only computes.
pub const UNSAFE_SOURCE: [&str; 3] = ["torch.from_file(", "torch.save(", "ops.c10d."];

/// The first `torch.classes.<namespace>` in `code` whose namespace is not compute-only.
fn unsafe_class(code: &str) -> Option<String> {
    code.match_indices("torch.classes.").find_map(|(at, p)| {
        let ns: String = code[at + p.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!crate::policy::compute_only_classes(&ns)).then(|| format!("torch.classes.{ns}"))
    })
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize)
}

/// A code file of an archive: its name and source.
pub type CodeEntry<'a> = (String, Cow<'a, [u8]>);

/// The `.py` entries of a zip archive: `(name, source bytes)`. `Err` for a blob that is not
/// a zip archive this reader understands.
pub fn code_entries(blob: &[u8]) -> Result<Vec<CodeEntry<'_>>, String> {
    const EOCD: usize = 0x0605_4b50;
    const CENTRAL: usize = 0x0201_4b50;
    const LOCAL: usize = 0x0403_4b50;
    let bad = |why: &str| format!("not a TorchScript archive ({why})");
    // The end-of-central-directory record is in the last 22 + 65535 bytes.
    let earliest = blob.len().saturating_sub(22 + 0xffff);
    let end = (earliest..blob.len().saturating_sub(21))
        .rev()
        .find(|i| u32_at(blob, *i) == Some(EOCD))
        .ok_or_else(|| bad("no zip directory"))?;
    let count = u16_at(blob, end + 10).ok_or_else(|| bad("truncated directory"))?;
    let mut at = u32_at(blob, end + 16).ok_or_else(|| bad("truncated directory"))?;
    let mut out = Vec::new();
    for _ in 0..count {
        if u32_at(blob, at) != Some(CENTRAL) {
            return Err(bad("corrupt directory entry"));
        }
        let field = |o: usize| u16_at(blob, at + o).ok_or_else(|| bad("truncated directory"));
        let method = field(10)?;
        let size = u32_at(blob, at + 20).ok_or_else(|| bad("truncated directory"))?;
        let unpacked = u32_at(blob, at + 24).ok_or_else(|| bad("truncated directory"))?;
        let (name_len, extra_len, comment_len) = (field(28)?, field(30)?, field(32)?);
        let local = u32_at(blob, at + 42).ok_or_else(|| bad("truncated directory"))?;
        let name = blob
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("truncated entry name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        at += 46 + name_len + extra_len + comment_len;
        if !name.ends_with(".py") {
            continue;
        }
        if method != 0 && method != 8 {
            return Err(bad(&format!(
                "code entry {name} uses compression method {method}"
            )));
        }
        if unpacked > MAX_CODE_BYTES {
            return Err(bad(&format!("code entry {name} declares {unpacked} bytes")));
        }
        if u32_at(blob, local) != Some(LOCAL) {
            return Err(bad("corrupt local header"));
        }
        let lname = u16_at(blob, local + 26).ok_or_else(|| bad("truncated local header"))?;
        let lextra = u16_at(blob, local + 28).ok_or_else(|| bad("truncated local header"))?;
        let start = local + 30 + lname + lextra;
        let data = blob
            .get(start..start.saturating_add(size))
            .ok_or_else(|| bad("an entry runs past the end"))?;
        let code = if method == 8 {
            let v = miniz_oxide::inflate::decompress_to_vec_with_limit(data, unpacked)
                .map_err(|e| bad(&format!("code entry {name} does not inflate ({e})")))?;
            Cow::Owned(v)
        } else {
            Cow::Borrowed(data)
        };
        out.push((name, code));
    }
    Ok(out)
}

/// Check an archive's code before libtorch sees it.
pub fn check(blob: &[u8], allow_unsafe: bool) -> Result<(), String> {
    for (name, code) in code_entries(blob)? {
        let text = String::from_utf8_lossy(&code);
        crate::source::check(&text).map_err(|e| format!("{name}, {e}"))?;
        if allow_unsafe {
            continue;
        }
        let found = UNSAFE_SOURCE
            .iter()
            .find(|p| text.contains(*p))
            .map(|p| p.trim_end_matches(['(', '.']).to_string())
            .or_else(|| unsafe_class(&text));
        if let Some(what) = found {
            return Err(crate::policy::refusal(&format!("{what} (in {name})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored zip with the given entries, as `torch.jit.save` writes them.
    pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[0; 14]);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            central.extend_from_slice(&[0; 6]);
            central.extend_from_slice(&0u16.to_le_bytes()); // method
            central.extend_from_slice(&[0; 8]);
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd.to_le_bytes());
        out.extend_from_slice(&[0; 2]);
        out
    }

    #[test]
    fn reads_code_entries_and_checks_them() {
        let z = zip(&[
            ("m/data.pkl", b"\x80\x02"),
            (
                "m/code/__torch__/m.py",
                b"def forward(self, x):\n  return x\n",
            ),
        ]);
        let e = code_entries(&z).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "m/code/__torch__/m.py");
        assert!(check(&z, false).is_ok());
        let evil = zip(&[(
            "m/code/__torch__/m.py",
            b"def __setstate__(self, s):\n  x = torch.from_file(\"/etc/passwd\")\n",
        )]);
        assert!(check(&evil, false).unwrap_err().contains("torch.from_file"));
        assert!(check(&evil, true).is_ok());
        let classes = zip(&[(
            "m/code/__torch__/m.py",
            b"class M(Module):\n  p : __torch__.torch.classes.quantized.LinearPackedParamsBase\n  s : __torch__.torch.classes.dist_c10d.TCPStore\n",
        )]);
        assert!(
            check(&classes, false)
                .unwrap_err()
                .contains("torch.classes.dist_c10d")
        );
        let quantized = zip(&[(
            "m/code/__torch__/m.py",
            b"class M(Module):\n  p : __torch__.torch.classes.quantized.LinearPackedParamsBase\n",
        )]);
        assert!(check(&quantized, false).is_ok());
        let deep = format!(
            "def f(x):\n  return {}x{}\n",
            "(".repeat(300),
            ")".repeat(300)
        );
        let z = zip(&[("m/code/m.py", deep.as_bytes())]);
        assert!(check(&z, true).unwrap_err().contains("m/code/m.py, line 2"));
    }

    #[test]
    fn real_archives_are_read() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/models");
        for f in ["add.pt", "lin.pt", "two_out.pt"] {
            let blob = std::fs::read(format!("{dir}/{f}")).unwrap();
            let code = code_entries(&blob).unwrap();
            assert_eq!(code.len(), 1, "{f}");
            assert!(
                String::from_utf8_lossy(&code[0].1).contains("def forward"),
                "{f}"
            );
            assert!(check(&blob, false).is_ok(), "{f}");
        }
    }

    #[test]
    fn garbage_and_truncations_are_errors_not_panics() {
        let z = zip(&[("a/code/x.py", b"x = 1\n")]);
        for cut in 0..z.len() {
            let _ = code_entries(&z[..cut]);
        }
        assert!(code_entries(b"this is not a model").is_err());
        let mut lying = z.clone();
        let n = lying.len();
        lying[n - 6..n - 2].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(code_entries(&lying).is_err());
    }
}
