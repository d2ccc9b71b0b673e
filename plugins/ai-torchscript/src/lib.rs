//! Checks on TorchScript before libtorch sees it, for the orc-ai TORCH backend: libtorch
//! recurses over source while compiling it, runs code while loading an archive, and
//! offers operations that reach outside the server. Plain Rust with no libtorch, so each
//! check is unit-tested and fuzzed on its own.
//!
//! - [`source`]: nesting bounds on source (brackets, blocks, operators per statement);
//! - [`archive`]: a bounded reader of a model archive's code, checked before loading;
//! - [`policy`]: the operations clients may not use, and the refusal message.
//!
//! ```
//! use orc_ai_torchscript::{policy, source};
//! assert!(source::check("def f(a):\n    return a + 1\n").is_ok());
//! assert!(source::check(&format!("x = {}1{}", "(".repeat(500), ")".repeat(500))).is_err());
//! assert!(policy::check(["aten::from_file"], false).is_err());
//! ```

pub mod archive;
pub mod fuzzing;
pub mod policy;
pub mod source;
