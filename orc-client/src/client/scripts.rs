//! TorchScript scripts: store (on every shard of a cluster), get, delete, run.

use std::path::Path;

use super::*;
use crate::error::{Error, Result};

impl Client {
    /// Store a TorchScript script (on every shard of a cluster).
    pub fn set_script(&mut self, name: &str, source: &str, device: &str) -> Result<()> {
        check(name, "script")?;
        let device = device.to_ascii_uppercase();
        if !(device.starts_with("CPU") || device.starts_with("GPU")) {
            return Err(Error::invalid(format!("{device} is not a valid device")));
        }
        let key = self.model_key(name, true);
        for (addr, k) in self.placements(&key) {
            self.t.run_on(
                &addr,
                redis::cmd("AI.SCRIPTSET")
                    .arg(&k)
                    .arg(&device)
                    .arg("SOURCE")
                    .arg(source),
                "AI.SCRIPTSET",
            )?;
        }
        Ok(())
    }

    /// Store a script read from a file.
    pub fn set_script_from_file(&mut self, name: &str, path: &Path, device: &str) -> Result<()> {
        let src = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("reading {}: {e}", path.display())))?;
        self.set_script(name, &src, device)
    }

    /// Store one copy per GPU and a general copy on device `GPU`.
    pub fn set_script_multigpu(
        &mut self,
        name: &str,
        source: &str,
        first_gpu: u32,
        num_gpus: u32,
    ) -> Result<()> {
        for i in first_gpu..first_gpu + num_gpus {
            self.set_script(&format!("{name}.GPU:{i}"), source, &format!("GPU:{i}"))?;
        }
        self.set_script(name, source, "GPU")
    }

    /// A stored script's source.
    pub fn get_script(&mut self, name: &str) -> Result<String> {
        check(name, "script")?;
        let key = self.model_key(name, false);
        let (addr, k) = self
            .placements(&key)
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("no shard"))?;
        match self.t.run_on(
            &addr,
            redis::cmd("AI.SCRIPTGET").arg(&k).arg("SOURCE"),
            "AI.SCRIPTGET",
        ) {
            Err(Error::Server { message, .. }) if message.contains("script key is empty") => {
                Err(Error::NotFound {
                    what: "script",
                    name: name.into(),
                })
            }
            other => Ok(text(&other?)),
        }
    }

    /// Delete a script (every shard's copy).
    pub fn delete_script(&mut self, name: &str) -> Result<()> {
        check(name, "script")?;
        let key = self.model_key(name, false);
        self.delete_everywhere(&key, "AI.SCRIPTDEL", "script", name)
    }

    /// Delete the per-GPU copies and the general copy.
    pub fn delete_script_multigpu(
        &mut self,
        name: &str,
        first_gpu: u32,
        num_gpus: u32,
    ) -> Result<()> {
        for i in first_gpu..first_gpu + num_gpus {
            self.delete_script(&format!("{name}.GPU:{i}"))?;
        }
        self.delete_script(name)
    }

    /// Run a script function (as SmartRedis: `AI.SCRIPTRUN key fn INPUTS ... OUTPUTS ...`).
    pub fn run_script(
        &mut self,
        name: &str,
        function: &str,
        inputs: &[&str],
        outputs: &[&str],
    ) -> Result<()> {
        check(name, "script")?;
        check(function, "function")?;
        if inputs.is_empty() {
            return Err(Error::invalid("run_script needs at least one input"));
        }
        let key = self.model_key(name, false);
        self.run_ai(&key, inputs, outputs, |k, ins, outs| {
            let mut c = redis::cmd("AI.SCRIPTRUN");
            c.arg(k).arg(function).arg("INPUTS");
            for i in ins {
                c.arg(i.as_slice());
            }
            c.arg("OUTPUTS");
            for o in outs {
                c.arg(o.as_slice());
            }
            c
        })
    }

    /// Run the per-GPU copy `name.GPU:<first_gpu + offset mod num_gpus>`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_script_multigpu(
        &mut self,
        name: &str,
        function: &str,
        inputs: &[&str],
        outputs: &[&str],
        offset: u32,
        first_gpu: u32,
        num_gpus: u32,
    ) -> Result<()> {
        if num_gpus == 0 {
            return Err(Error::invalid("num_gpus must be positive"));
        }
        self.run_script(
            &format!("{name}.GPU:{}", first_gpu + offset % num_gpus),
            function,
            inputs,
            outputs,
        )
    }
}
