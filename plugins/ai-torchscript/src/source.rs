//! Bounds on TorchScript source before libtorch compiles it: libtorch's parser and IR
//! emitter recurse once per nesting level and per operator of a chain, so deeply nested
//! source (`((((...))))`, `------x`, `a+a+...+a` with 10^5 terms, 1000 levels of `if`)
//! would overflow the thread's stack and take the server down. A light lexer measures
//! bracket depth, block (indentation) depth and operators per statement, skipping strings
//! and comments, and refuses source past the bounds with a clear message.

/// Deepest bracket nesting (`(`, `[`, `{`).
pub const MAX_BRACKETS: usize = 100;
/// Deepest block nesting (indentation levels).
pub const MAX_BLOCKS: usize = 100;
/// Most operators in one statement (each may add a level to the expression tree).
pub const MAX_OPERATORS: usize = 1000;

/// Check `src` against the bounds.
pub fn check(src: &str) -> Result<(), String> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut brackets = 0usize;
    let mut operators = 0usize;
    let mut indents: Vec<usize> = vec![0];
    let mut line_start = true;
    let mut line = 1usize;
    while i < b.len() {
        if line_start && brackets == 0 {
            // Measure the indentation of a logical line that has content.
            let mut j = i;
            let mut width = 0;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                width += if b[j] == b'\t' { 8 } else { 1 };
                j += 1;
            }
            if j < b.len() && b[j] != b'\n' && b[j] != b'\r' && b[j] != b'#' {
                while indents.last().is_some_and(|w| *w > width) {
                    indents.pop();
                }
                if indents.last().is_some_and(|w| *w < width) {
                    indents.push(width);
                }
                if indents.len() - 1 > MAX_BLOCKS {
                    return Err(format!(
                        "line {line}: blocks nest more than {MAX_BLOCKS} deep; orc-ai refuses such source so that compiling it cannot exhaust the server's stack"
                    ));
                }
            }
            i = j;
            line_start = false;
            continue;
        }
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                i = skip_string(b, i, &mut line);
                continue;
            }
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                i += 2;
                line += 1;
                continue;
            }
            b'\n' => {
                line += 1;
                if brackets == 0 {
                    line_start = true;
                    operators = 0;
                }
            }
            b'(' | b'[' | b'{' => {
                brackets += 1;
                if brackets > MAX_BRACKETS {
                    return Err(format!(
                        "line {line}: brackets nest more than {MAX_BRACKETS} deep; orc-ai refuses such source so that compiling it cannot exhaust the server's stack"
                    ));
                }
            }
            b')' | b']' | b'}' => brackets = brackets.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'@' | b'&' | b'|' | b'^' | b'~' | b'<' | b'>'
            | b'=' | b'!' | b'.' => operators += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if matches!(
                    &b[start..i],
                    b"not" | b"and" | b"or" | b"if" | b"else" | b"is" | b"in"
                ) {
                    operators += 1;
                }
                if operators > MAX_OPERATORS {
                    return Err(too_many(line));
                }
                continue;
            }
            _ => {}
        }
        if operators > MAX_OPERATORS {
            return Err(too_many(line));
        }
        i += 1;
    }
    Ok(())
}

fn too_many(line: usize) -> String {
    format!(
        "line {line}: a statement has more than {MAX_OPERATORS} operators; orc-ai refuses such source so that compiling it cannot exhaust the server's stack"
    )
}

/// Skip a string literal starting at `i` (single, double or triple quoted); returns the
/// index after it (or the end of the source when it is unterminated).
fn skip_string(b: &[u8], i: usize, line: &mut usize) -> usize {
    let q = b[i];
    let triple = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'\n' => {
                *line += 1;
                if !triple {
                    return j;
                }
                j += 1;
            }
            c if c == q => {
                if !triple {
                    return j + 1;
                }
                if b.get(j + 1) == Some(&q) && b.get(j + 2) == Some(&q) {
                    return j + 3;
                }
                j += 1;
            }
            _ => j += 1,
        }
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_scripts_pass() {
        let src = "def f(tensors: List[Tensor], keys: List[str], args: List[str]):\n    a = tensors[0]\n    # a comment with ((((((\n    s = \"))))\" + '[[['\n    if a.sum() > 0:\n        return [a * 2 + 1, (a - 1) / 3]\n    return [a]\n";
        assert!(check(src).is_ok());
        let long_list = format!("def f(a):\n    return [{}]\n", vec!["1"; 5000].join(", "));
        assert!(check(&long_list).is_ok(), "commas do not nest");
    }

    #[test]
    fn deep_source_is_refused_with_its_line() {
        let parens = format!(
            "def f(a):\n    return {}a{}\n",
            "(".repeat(200),
            ")".repeat(200)
        );
        assert!(check(&parens).unwrap_err().contains("line 2: brackets"));
        let unary = format!("def f(a):\n    return {}a\n", "-".repeat(5000));
        assert!(check(&unary).unwrap_err().contains("operators"));
        let chain = format!("def f(a):\n    return {}\n", vec!["a"; 5000].join("+"));
        assert!(check(&chain).unwrap_err().contains("operators"));
        let nots = format!("def f(a: bool):\n    return {}a\n", "not ".repeat(2000));
        assert!(check(&nots).unwrap_err().contains("operators"));
        let mut blocks = String::from("def f(a):\n");
        for d in 1..=150 {
            blocks.push_str(&" ".repeat(d));
            blocks.push_str("if True:\n");
        }
        blocks.push_str(&" ".repeat(151));
        blocks.push_str("pass\n");
        assert!(check(&blocks).unwrap_err().contains("blocks nest"));
    }

    #[test]
    fn strings_and_comments_hide_brackets() {
        let s = format!("x = '{}'\n# {}\n", "(".repeat(500), "[".repeat(500));
        assert!(check(&s).is_ok());
        assert!(check("x = '''a\n(((\n'''\n").is_ok());
        assert!(check("x = 'unterminated").is_ok());
    }
}
