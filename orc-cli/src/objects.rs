//! The objects to load, from the command line and objects files.

use anyhow::Context;
use orc_core::DbObject;

use crate::cli::ObjectArgs;

/// Every object the arguments name, in the order given (files last), with absolute paths,
/// each checked as far as it can be before anything starts.
pub(crate) fn from_args(a: &ObjectArgs) -> anyhow::Result<Vec<DbObject>> {
    let mut out = Vec::new();
    for m in &a.models {
        out.push(DbObject::parse_model(m)?);
    }
    for s in &a.scripts {
        out.push(DbObject::parse_script(s)?);
    }
    for f in &a.functions {
        out.push(DbObject::parse_function(f)?);
    }
    for file in &a.objects {
        out.extend(orc_orchestrator::preload::read_objects_file(file)?);
    }
    let here = std::env::current_dir().context("the current directory")?;
    for o in &mut out {
        o.validate(&here)?;
    }
    Ok(out)
}
