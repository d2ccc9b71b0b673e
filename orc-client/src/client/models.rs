//! Models: options, store (in chunks, on every shard of a cluster), get, delete, run;
//! and the execution both models and scripts go through (`run_ai`).

use std::path::Path;

use redis::{Cmd, Value};

use super::*;
use crate::{
    error::{Error, Result},
    slot::{hash_slot, shard_prefix},
};

/// Options for [`Client::set_model`], in SmartRedis's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelOptions {
    /// `CPU`, `GPU` or `GPU:<n>`.
    pub device: String,
    /// Auto-batching size (0: off).
    pub batch_size: u64,
    /// Minimum batch (needs `batch_size`).
    pub min_batch_size: u64,
    /// Milliseconds to wait for the minimum batch (needs `min_batch_size`).
    pub min_batch_timeout: u64,
    /// A free-form tag.
    pub tag: String,
    /// Input node names (TF only).
    pub inputs: Vec<String>,
    /// Output node names (TF only).
    pub outputs: Vec<String>,
}

impl ModelOptions {
    /// Defaults: device `CPU`, no batching.
    pub fn cpu() -> Self {
        ModelOptions {
            device: "CPU".into(),
            ..Default::default()
        }
    }

    /// Set the device.
    pub fn device(mut self, d: &str) -> Self {
        self.device = d.into();
        self
    }

    /// Set batching parameters.
    pub fn batching(mut self, batch: u64, min_batch: u64, min_batch_timeout: u64) -> Self {
        self.batch_size = batch;
        self.min_batch_size = min_batch;
        self.min_batch_timeout = min_batch_timeout;
        self
    }

    /// Set the tag.
    pub fn tag(mut self, t: &str) -> Self {
        self.tag = t.into();
        self
    }

    /// Set TF input and output node names.
    pub fn io(mut self, inputs: &[&str], outputs: &[&str]) -> Self {
        self.inputs = inputs.iter().map(|s| s.to_string()).collect();
        self.outputs = outputs.iter().map(|s| s.to_string()).collect();
        self
    }
}

impl Client {
    /// The model chunk size (asked from the database unless set with
    /// [`Client::set_model_chunk_size`]).
    pub fn model_chunk_size(&mut self) -> Result<u64> {
        if let Some(c) = self.chunk_size {
            return Ok(c);
        }
        match self.t.run(
            None,
            redis::cmd("AI.CONFIG").arg("GET").arg("MODEL_CHUNK_SIZE"),
            "AI.CONFIG GET MODEL_CHUNK_SIZE",
        )? {
            Value::Int(n) if n > 0 => Ok(n as u64),
            other => Err(Error::Protocol {
                command: "AI.CONFIG GET MODEL_CHUNK_SIZE".into(),
                message: format!("{other:?}"),
            }),
        }
    }

    /// Set the model chunk size on every shard (SmartRedis sets it on one only).
    pub fn set_model_chunk_size(&mut self, bytes: u64) -> Result<()> {
        if bytes == 0 {
            return Err(Error::invalid("the chunk size must be positive"));
        }
        for s in self.t.shards() {
            self.t.run_on(
                &s.address,
                redis::cmd("AI.CONFIG").arg("MODEL_CHUNK_SIZE").arg(bytes),
                "AI.CONFIG MODEL_CHUNK_SIZE",
            )?;
        }
        self.chunk_size = Some(bytes);
        Ok(())
    }

    /// The keys under which a model or script lives: one per shard in a cluster
    /// (`{<shard prefix>}.key`), the key itself otherwise. The first is shard 0's.
    pub(super) fn placements(&self, key: &[u8]) -> Vec<(String, Vec<u8>)> {
        if !self.t.clustered() {
            return self
                .t
                .shards()
                .into_iter()
                .map(|s| (s.address, key.to_vec()))
                .collect();
        }
        self.t
            .shards()
            .into_iter()
            .map(|s| {
                let mut k = b"{".to_vec();
                k.extend(shard_prefix(s.lowest_slot));
                k.extend(b"}.");
                k.extend_from_slice(key);
                (s.address, k)
            })
            .collect()
    }

    pub(super) fn validate_model(backend: &str, o: &ModelOptions) -> Result<()> {
        if !["TF", "TFLITE", "TORCH", "ONNX"].contains(&backend) {
            return Err(Error::invalid(format!(
                "{backend} is not a valid backend (TF, TFLITE, TORCH, ONNX)"
            )));
        }
        if !(o.device.starts_with("CPU") || o.device.starts_with("GPU")) {
            return Err(Error::invalid(format!(
                "{} is not a valid device (CPU, GPU, GPU:<n>)",
                o.device
            )));
        }
        if (!o.inputs.is_empty() || !o.outputs.is_empty()) && backend != "TF" {
            return Err(Error::invalid(
                "INPUTS and OUTPUTS are only for the TF backend",
            ));
        }
        if (o.min_batch_size > 0 || o.min_batch_timeout > 0) && o.batch_size == 0 {
            return Err(Error::invalid(
                "a minimum batch size or timeout needs a batch size",
            ));
        }
        if o.min_batch_timeout > 0 && o.min_batch_size == 0 {
            return Err(Error::invalid(
                "a minimum batch timeout needs a minimum batch size",
            ));
        }
        Ok(())
    }

    pub(super) fn modelstore(
        key: &[u8],
        model: &[u8],
        backend: &str,
        o: &ModelOptions,
        chunk: u64,
    ) -> Cmd {
        let mut c = redis::cmd("AI.MODELSTORE");
        c.arg(key).arg(backend).arg(&o.device);
        if !o.tag.is_empty() {
            c.arg("TAG").arg(&o.tag);
        }
        for (k, v) in [
            ("BATCHSIZE", o.batch_size),
            ("MINBATCHSIZE", o.min_batch_size),
            ("MINBATCHTIMEOUT", o.min_batch_timeout),
        ] {
            if v > 0 {
                c.arg(k).arg(v);
            }
        }
        if !o.inputs.is_empty() {
            c.arg("INPUTS").arg(o.inputs.len()).arg(&o.inputs);
        }
        if !o.outputs.is_empty() {
            c.arg("OUTPUTS").arg(o.outputs.len()).arg(&o.outputs);
        }
        c.arg("BLOB");
        for chunk in model.chunks(chunk.max(1) as usize) {
            c.arg(chunk);
        }
        c
    }

    /// Store a model (on every shard of a cluster).
    pub fn set_model(
        &mut self,
        name: &str,
        model: &[u8],
        backend: &str,
        options: &ModelOptions,
    ) -> Result<()> {
        check(name, "model")?;
        if model.is_empty() {
            return Err(Error::invalid("the model is empty"));
        }
        let backend = backend.to_ascii_uppercase();
        let mut o = options.clone();
        o.device = o.device.to_ascii_uppercase();
        Self::validate_model(&backend, &o)?;
        let chunk = self.model_chunk_size()?;
        let key = self.model_key(name, true);
        for (addr, k) in self.placements(&key) {
            self.t.run_on(
                &addr,
                &Self::modelstore(&k, model, &backend, &o, chunk),
                "AI.MODELSTORE",
            )?;
        }
        Ok(())
    }

    /// Store a model read from a file.
    pub fn set_model_from_file(
        &mut self,
        name: &str,
        path: &Path,
        backend: &str,
        options: &ModelOptions,
    ) -> Result<()> {
        let blob = std::fs::read(path)
            .map_err(|e| Error::invalid(format!("reading {}: {e}", path.display())))?;
        self.set_model(name, &blob, backend, options)
    }

    /// Store one copy per GPU (`name.GPU:<i>` for `first_gpu .. first_gpu + num_gpus`) and a
    /// general copy on device `GPU`.
    pub fn set_model_multigpu(
        &mut self,
        name: &str,
        model: &[u8],
        backend: &str,
        first_gpu: u32,
        num_gpus: u32,
        options: &ModelOptions,
    ) -> Result<()> {
        if num_gpus == 0 {
            return Err(Error::invalid("num_gpus must be positive"));
        }
        for i in first_gpu..first_gpu + num_gpus {
            self.set_model(
                &format!("{name}.GPU:{i}"),
                model,
                backend,
                &options.clone().device(&format!("GPU:{i}")),
            )?;
        }
        self.set_model(name, model, backend, &options.clone().device("GPU"))
    }

    /// A stored model's bytes (chunked replies are joined correctly).
    pub fn get_model(&mut self, name: &str) -> Result<Vec<u8>> {
        check(name, "model")?;
        let key = self.model_key(name, false);
        let (addr, k) = self
            .placements(&key)
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("no shard"))?;
        let v = match self.t.run_on(
            &addr,
            redis::cmd("AI.MODELGET").arg(&k).arg("BLOB"),
            "AI.MODELGET",
        ) {
            Err(Error::Server { message, .. }) if message.contains("model key is empty") => {
                return Err(Error::NotFound {
                    what: "model",
                    name: name.into(),
                });
            }
            other => other?,
        };
        match v {
            Value::Array(chunks) => Ok(chunks.iter().filter_map(bytes).flatten().collect()),
            other => bytes(&other).ok_or_else(|| Error::Protocol {
                command: "AI.MODELGET".into(),
                message: format!("{other:?}"),
            }),
        }
    }

    pub(super) fn delete_everywhere(
        &mut self,
        key: &[u8],
        verb: &str,
        what: &'static str,
        name: &str,
    ) -> Result<()> {
        for (addr, k) in self.placements(key) {
            match self.t.run_on(&addr, redis::cmd(verb).arg(&k), verb) {
                Err(Error::Server { message, .. }) if message.contains("key is empty") => {
                    return Err(Error::NotFound {
                        what,
                        name: name.into(),
                    });
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// Delete a model (every shard's copy).
    pub fn delete_model(&mut self, name: &str) -> Result<()> {
        check(name, "model")?;
        let key = self.model_key(name, false);
        self.delete_everywhere(&key, "AI.MODELDEL", "model", name)
    }

    /// Delete the per-GPU copies and the general copy.
    pub fn delete_model_multigpu(
        &mut self,
        name: &str,
        first_gpu: u32,
        num_gpus: u32,
    ) -> Result<()> {
        for i in first_gpu..first_gpu + num_gpus {
            self.delete_model(&format!("{name}.GPU:{i}"))?;
        }
        self.delete_model(name)
    }

    /// Whether a model or script exists (shard 0's copy in a cluster).
    pub fn model_exists(&mut self, name: &str) -> Result<bool> {
        check(name, "model")?;
        let key = self.model_key(name, false);
        let (addr, k) = self
            .placements(&key)
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("no shard"))?;
        Ok(
            matches!(self.t.run_on(&addr, redis::cmd("EXISTS").arg(&k), "EXISTS")?, Value::Int(n) if n > 0),
        )
    }

    /// Wait for a model or script.
    pub fn poll_model(&mut self, name: &str, interval_ms: u64, tries: u64) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.model_exists(name))
    }

    /// Run a stored model on tensors. In a cluster the inputs are copied next to the model
    /// on the shard that owns the first input, as SmartRedis does, and the outputs copied back.
    pub fn run_model(&mut self, name: &str, inputs: &[&str], outputs: &[&str]) -> Result<()> {
        check(name, "model")?;
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::invalid(
                "run_model needs at least one input and one output",
            ));
        }
        let key = self.model_key(name, false);
        let timeout = self.t.cfg.model_timeout_ms;
        self.run_ai(&key, inputs, outputs, |k, ins, outs| {
            let mut c = redis::cmd("AI.MODELEXECUTE");
            c.arg(k).arg("INPUTS").arg(ins.len());
            for i in ins {
                c.arg(i.as_slice());
            }
            c.arg("OUTPUTS").arg(outs.len());
            for o in outs {
                c.arg(o.as_slice());
            }
            c.arg("TIMEOUT").arg(timeout);
            c
        })
    }

    /// Run the per-GPU copy `name.GPU:<first_gpu + offset mod num_gpus>`.
    pub fn run_model_multigpu(
        &mut self,
        name: &str,
        offset: u32,
        first_gpu: u32,
        num_gpus: u32,
        inputs: &[&str],
        outputs: &[&str],
    ) -> Result<()> {
        if num_gpus == 0 {
            return Err(Error::invalid("num_gpus must be positive"));
        }
        self.run_model(
            &format!("{name}.GPU:{}", first_gpu + offset % num_gpus),
            inputs,
            outputs,
        )
    }

    pub(super) fn run_ai(
        &mut self,
        key: &[u8],
        inputs: &[&str],
        outputs: &[&str],
        build: impl Fn(&[u8], &[Vec<u8>], &[Vec<u8>]) -> Cmd,
    ) -> Result<()> {
        let ins: Vec<Vec<u8>> = inputs.iter().map(|i| self.tensor_key(i, false)).collect();
        let outs: Vec<Vec<u8>> = outputs.iter().map(|o| self.tensor_key(o, true)).collect();
        if !self.t.clustered() {
            self.run(key, &build(key, &ins, &outs), "run")?;
            return Ok(());
        }
        // The shard that owns the first input, and its copy of the model.
        let slot = hash_slot(&ins[0]);
        let shard = self
            .t
            .shards()
            .into_iter()
            .rev()
            .find(|s| s.lowest_slot <= slot)
            .ok_or_else(|| Error::invalid("no shard"))?;
        let tagged = |k: &[u8], tmp: bool| {
            let mut v = b"{".to_vec();
            v.extend(shard_prefix(shard.lowest_slot));
            v.extend(b"}.");
            v.extend_from_slice(k);
            if tmp {
                v.extend(b".TMP");
            }
            v
        };
        let model_key = tagged(key, false);
        let tmp_in: Vec<Vec<u8>> = ins.iter().map(|k| tagged(k, true)).collect();
        let tmp_out: Vec<Vec<u8>> = outs.iter().map(|k| tagged(k, true)).collect();
        for (src, dst) in ins.iter().zip(&tmp_in) {
            let t = self.get_tensor_key(src, &String::from_utf8_lossy(src))?;
            self.put_tensor_key(dst, &t)?;
        }
        let result = self.run(&model_key, &build(&model_key, &tmp_in, &tmp_out), "run");
        let copied = result.and_then(|_| {
            for (src, dst) in tmp_out.iter().zip(&outs) {
                let t = self.get_tensor_key(src, &String::from_utf8_lossy(src))?;
                self.put_tensor_key(dst, &t)?;
            }
            Ok(())
        });
        let mut temps = tmp_out.clone();
        temps.extend(tmp_in);
        let cleaned = self.delete_keys(&temps);
        copied.and(cleaned)
    }
}
