//! Hostile values against a launcher's job scripts: every value a user or a setting can
//! put into a directive or an environment line (account, queue, `--batch-arg`,
//! `--run-arg`, environment names) must be refused when it could change the script, and
//! every environment value and argument must be quoted.
//!
//! ```
//! use orc_launcher_kit::{testing::scripts, tools};
//! // A toy scheduler whose scripts are built with the kit's helpers.
//! let batch = |b: &orc_core::BatchSettings| {
//!     let d = tools::directives("#X", [("-A", b.account.clone()), ("-q", b.queue.clone())])?;
//!     Ok(d + &tools::extra_directives("#X", &b.extra, false)?)
//! };
//! let step = |s: &orc_core::LaunchStep| {
//!     Ok(tools::extra_directives("#X", &s.run.extra, false)?
//!         + &s.script_prologue()?
//!         + &format!("exec {}\n", s.command_line()))
//! };
//! scripts::refuse_hostile_values(&batch, &step);
//! ```

use orc_core::{BatchSettings, LaunchStep, Result};

/// Values that would add a line, an option or a command to a script.
pub const HOSTILE: [&str; 6] = [
    "proj\nrm -rf ~",
    "a b",
    "x\r#PBS -l select=999",
    "nul\0",
    "tab\there",
    "$(touch /tmp/orc-owned)\n",
];

/// Check `batch_script` (an allocation's script from batch settings) and `step_script` (a
/// step's own batch script): hostile accounts, queues, extra settings and environment
/// names are refused; hostile environment values and arguments are quoted. Panics with
/// what got through.
pub fn refuse_hostile_values(
    batch_script: &dyn Fn(&BatchSettings) -> Result<String>,
    step_script: &dyn Fn(&LaunchStep) -> Result<String>,
) {
    for v in HOSTILE {
        let mut b = BatchSettings::default();
        b.account = Some(v.into());
        assert!(batch_script(&b).is_err(), "account {v:?} accepted");
        let mut b = BatchSettings::default();
        b.queue = Some(v.into());
        assert!(batch_script(&b).is_err(), "queue {v:?} accepted");
        let mut b = BatchSettings::default();
        b.extra.insert("k".into(), Some(v.into()));
        assert!(
            batch_script(&b).is_err(),
            "--batch-arg value {v:?} accepted"
        );
        let mut b = BatchSettings::default();
        b.extra.insert(v.into(), None);
        assert!(batch_script(&b).is_err(), "--batch-arg name {v:?} accepted");
        let mut step = LaunchStep::new("app", "/bin/true", "/w");
        step.run.extra.insert("k".into(), Some(v.into()));
        assert!(
            step_script(&step).is_err(),
            "--run-arg value {v:?} accepted"
        );
        let step = LaunchStep::new("app", "/bin/true", "/w").env(v, "x");
        assert!(
            step_script(&step).is_err(),
            "environment name {v:?} accepted"
        );
    }
    let step = LaunchStep::new("app", "/bin/echo", "/w")
        .args(["$(id)", "a\nb", "it's"])
        .env("X", "`id`\n$(id)");
    let s = step_script(&step).expect("a script for plain settings");
    assert!(
        s.contains("export X='`id`\n$(id)'\n"),
        "environment value not quoted:\n{s}"
    );
    assert!(
        s.contains(
            r"'$(id)' 'a
b' 'it'\''s'"
        ),
        "arguments not quoted:\n{s}"
    );
    for line in s.lines() {
        assert!(
            !line.trim_start().starts_with("rm ") && !line.contains("orc-owned"),
            "a hostile line got through:\n{s}"
        );
    }
}
