//! The client: SmartRedis's API, byte-compatible on the wire and in the database.

use std::{collections::BTreeMap, path::Path, time::Duration};

use redis::{Cmd, Pipeline, Value};

use crate::{
    config::Config,
    dataset::{COMPLETE, DataSet},
    error::{Error, Result},
    slot::{hash_slot, shard_prefix},
    tensor::{Element, MemoryLayout, Tensor, TensorType, element_count},
    transport::{Shard, Transport},
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

/// Which keys get the ensemble prefixes.
#[derive(Debug, Clone, Copy)]
struct PrefixFlags {
    tensor: bool,
    dataset: bool,
    list: bool,
    model: bool,
}

/// A SmartRedis-compatible client.
pub struct Client {
    t: Transport,
    flags: PrefixFlags,
    source: Option<String>,
    chunk_size: Option<u64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.t.cfg)
            .finish_non_exhaustive()
    }
}

fn check(name: &str, what: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("the {what} name is empty")));
    }
    Ok(())
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Double(d) => Some(d.to_string().into_bytes()),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    bytes(v)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn pipeline_errors(name: &str, replies: &[Value]) -> Result<()> {
    for r in replies {
        if let Value::ServerError(e) = r {
            let message = format!("{} {}", e.code(), e.details().unwrap_or_default());
            if message.contains("unknown command") && message.contains("AI.") {
                return Err(Error::ModuleMissing {
                    command: name.into(),
                    message,
                });
            }
            return Err(Error::Server {
                command: name.into(),
                message,
            });
        }
    }
    Ok(())
}

/// Parse an `AI.TENSORGET key META BLOB` reply.
fn parse_tensor(name: &str, v: Value) -> Result<Tensor> {
    let bad = |m: &str| Error::Protocol {
        command: format!("AI.TENSORGET {name}"),
        message: m.into(),
    };
    let Value::Array(mut items) = v else {
        return Err(bad("not an array"));
    };
    if items.len() < 6 {
        return Err(bad("fewer than 6 elements"));
    }
    let dtype = TensorType::from_wire(&bytes(&items[1]).unwrap_or_default())
        .ok_or_else(|| bad("an unknown tensor type"))?;
    let Value::Array(shape) = &items[3] else {
        return Err(bad("the shape is not an array"));
    };
    let dims: Vec<usize> = shape
        .iter()
        .map(|d| {
            if let Value::Int(i) = d {
                *i as usize
            } else {
                0
            }
        })
        .collect();
    // Move the blob out of the reply instead of copying it.
    let data = match std::mem::replace(&mut items[5], Value::Nil) {
        Value::BulkString(b) => b,
        other => bytes(&other).ok_or_else(|| bad("no blob"))?,
    };
    if element_count(&dims).map(|n| n * dtype.size()).ok() != Some(data.len()) {
        return Err(bad("the blob does not match the shape"));
    }
    Ok(Tensor { dtype, dims, data })
}

impl Client {
    /// Connect with `config`.
    pub fn new(config: Config) -> Result<Client> {
        let t = Transport::connect(config)?;
        Ok(Client {
            t,
            flags: PrefixFlags {
                tensor: true,
                dataset: true,
                list: true,
                model: false,
            },
            source: None,
            chunk_size: None,
        })
    }

    /// Connect using the SmartRedis environment (`SSDB`, `SR_DB_TYPE`, ...).
    pub fn from_env() -> Result<Client> {
        Client::new(Config::from_env("")?)
    }

    /// Connect to database `db_identifier` (variables `SSDB_<id>`, ... as `orc run` sets).
    pub fn from_env_suffix(db_identifier: &str) -> Result<Client> {
        Client::new(Config::from_env(db_identifier)?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.t.cfg
    }

    /// Whether the database is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.t.clustered()
    }

    /// The shards.
    pub fn shards(&self) -> Vec<Shard> {
        self.t.shards()
    }

    // ---- prefixes ----

    fn put_prefix(&self) -> Option<&str> {
        self.t.cfg.key_out.as_deref()
    }

    fn get_prefix(&self) -> Option<&str> {
        self.source
            .as_deref()
            .or(self.t.cfg.keys_in.first().map(String::as_str))
    }

    fn prefixed(prefix: Option<&str>, on: bool, name: &str) -> Vec<u8> {
        match prefix.filter(|_| on) {
            Some(p) => format!("{p}.{name}").into_bytes(),
            None => name.as_bytes().to_vec(),
        }
    }

    fn tensor_key(&self, name: &str, put: bool) -> Vec<u8> {
        Self::prefixed(
            if put {
                self.put_prefix()
            } else {
                self.get_prefix()
            },
            self.flags.tensor,
            name,
        )
    }

    /// `P.{name}`: the key a dataset is known by (and what lists hold).
    fn dataset_key(&self, name: &str, put: bool) -> String {
        let p = if put {
            self.put_prefix()
        } else {
            self.get_prefix()
        };
        match p.filter(|_| self.flags.dataset) {
            Some(p) => format!("{p}.{{{name}}}"),
            None => format!("{{{name}}}"),
        }
    }

    fn list_key(&self, name: &str, put: bool) -> Vec<u8> {
        Self::prefixed(
            if put {
                self.put_prefix()
            } else {
                self.get_prefix()
            },
            self.flags.list,
            name,
        )
    }

    fn model_key(&self, name: &str, put: bool) -> Vec<u8> {
        Self::prefixed(
            if put {
                self.put_prefix()
            } else {
                self.get_prefix()
            },
            self.flags.model,
            name,
        )
    }

    /// Read from another `SSKEYIN` entry.
    pub fn set_data_source(&mut self, source: &str) -> Result<()> {
        if !self.t.cfg.keys_in.iter().any(|k| k == source) {
            return Err(Error::invalid(format!(
                "data source {source} could not be found during client initialization (SSKEYIN)"
            )));
        }
        self.source = Some(source.into());
        Ok(())
    }

    /// Prefix tensor keys (default on).
    pub fn use_tensor_ensemble_prefix(&mut self, on: bool) {
        self.flags.tensor = on;
    }

    /// Prefix dataset keys (default on).
    pub fn use_dataset_ensemble_prefix(&mut self, on: bool) {
        self.flags.dataset = on;
    }

    /// Prefix aggregation-list keys (default on).
    pub fn use_list_ensemble_prefix(&mut self, on: bool) {
        self.flags.list = on;
    }

    /// Prefix model and script keys (default off).
    pub fn use_model_ensemble_prefix(&mut self, on: bool) {
        self.flags.model = on;
    }

    // ---- plumbing ----

    fn run(&mut self, key: &[u8], cmd: &Cmd, name: &str) -> Result<Value> {
        self.t.run(Some(key), cmd, name)
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool> {
        Ok(
            matches!(self.run(key, redis::cmd("EXISTS").arg(key), "EXISTS")?, Value::Int(n) if n > 0),
        )
    }

    fn delete_keys(&mut self, keys: &[Vec<u8>]) -> Result<()> {
        let Some(first) = keys.first() else {
            return Ok(());
        };
        let verb = if self.t.clustered() { "UNLINK" } else { "DEL" };
        let mut cmd = redis::cmd(verb);
        for k in keys {
            cmd.arg(k.as_slice());
        }
        self.run(first, &cmd, verb)?;
        Ok(())
    }

    fn poll(
        &mut self,
        interval_ms: u64,
        tries: u64,
        mut f: impl FnMut(&mut Self) -> Result<bool>,
    ) -> Result<bool> {
        for i in 0..tries {
            if f(self)? {
                return Ok(true);
            }
            if i + 1 < tries {
                std::thread::sleep(Duration::from_millis(interval_ms));
            }
        }
        Ok(false)
    }

    // ---- tensors ----

    fn tensorset(key: &[u8], t: &Tensor) -> Cmd {
        let mut c = redis::cmd("AI.TENSORSET");
        c.arg(key).arg(t.dtype.wire_name());
        for d in &t.dims {
            c.arg(*d);
        }
        c.arg("BLOB").arg(t.data.as_slice());
        c
    }

    fn put_tensor_key(&mut self, key: &[u8], t: &Tensor) -> Result<()> {
        element_count(&t.dims)?;
        self.put_raw(key, t.dtype, &t.dims, &t.data)
    }

    fn get_tensor_key(&mut self, key: &[u8], name: &str) -> Result<Tensor> {
        match self.run(
            key,
            redis::cmd("AI.TENSORGET").arg(key).arg("META").arg("BLOB"),
            "AI.TENSORGET",
        ) {
            Err(Error::Server { message, .. }) if message.contains("tensor key is empty") => {
                Err(Error::NotFound {
                    what: "tensor",
                    name: name.into(),
                })
            }
            Err(e) => Err(e),
            Ok(v) => parse_tensor(name, v),
        }
    }

    /// Store a tensor.
    pub fn put_tensor(&mut self, name: &str, tensor: &Tensor) -> Result<()> {
        check(name, "tensor")?;
        let key = self.tensor_key(name, true);
        self.put_tensor_key(&key, tensor)
    }

    /// Store a tensor from a flat slice in `layout` order.
    pub fn put_tensor_slice<T: Element>(
        &mut self,
        name: &str,
        values: &[T],
        dims: &[usize],
        layout: MemoryLayout,
    ) -> Result<()> {
        if layout == MemoryLayout::ColumnMajor {
            return self.put_tensor(name, &Tensor::from_slice(values, dims, layout)?);
        }
        check(name, "tensor")?;
        let n = element_count(dims)?;
        if values.len() != n {
            return Err(Error::invalid(format!(
                "{} values do not fill dimensions {dims:?} ({n} elements)",
                values.len()
            )));
        }
        // Row-major data goes to the wire straight from the caller's slice, packed once.
        let key = self.tensor_key(name, true);
        #[cfg(target_endian = "little")]
        // SAFETY: as in `tensor::as_le_bytes`: plain values, no padding, little-endian layout.
        let raw = unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        };
        #[cfg(not(target_endian = "little"))]
        let owned = crate::tensor::as_le_bytes(values);
        #[cfg(not(target_endian = "little"))]
        let raw = owned.as_slice();
        self.put_raw(&key, T::TYPE, dims, raw)
    }

    fn put_raw(
        &mut self,
        key: &[u8],
        dtype: TensorType,
        dims: &[usize],
        data: &[u8],
    ) -> Result<()> {
        let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
        let mut args: Vec<&[u8]> = vec![b"AI.TENSORSET", key, dtype.wire_name().as_bytes()];
        args.extend(dims.iter().map(|d| d.as_bytes()));
        args.push(b"BLOB");
        args.push(data);
        self.t.run_args(key, &args, "AI.TENSORSET")?;
        Ok(())
    }

    /// Read a tensor.
    pub fn get_tensor(&mut self, name: &str) -> Result<Tensor> {
        check(name, "tensor")?;
        let key = self.tensor_key(name, false);
        self.get_tensor_key(&key, name)
    }

    /// Read a tensor into `out`, checking type, dimensions and buffer size.
    pub fn unpack_tensor<T: Element>(
        &mut self,
        name: &str,
        out: &mut [T],
        dims: &[usize],
        layout: MemoryLayout,
    ) -> Result<()> {
        self.get_tensor(name)?.unpack_into(out, dims, layout)
    }

    /// Delete a tensor.
    pub fn delete_tensor(&mut self, name: &str) -> Result<()> {
        check(name, "tensor")?;
        let key = self.tensor_key(name, false);
        self.delete_keys(&[key])
    }

    /// Copy a tensor (works across shards).
    pub fn copy_tensor(&mut self, src: &str, dest: &str) -> Result<()> {
        check(dest, "tensor")?;
        let t = self.get_tensor(src)?;
        self.put_tensor(dest, &t)
    }

    /// Rename a tensor (across shards: copy, then delete).
    pub fn rename_tensor(&mut self, old: &str, new: &str) -> Result<()> {
        check(old, "tensor")?;
        check(new, "tensor")?;
        let (from, to) = (self.tensor_key(old, false), self.tensor_key(new, true));
        if !self.exists(&from)? {
            return Err(Error::NotFound {
                what: "tensor",
                name: old.into(),
            });
        }
        if !self.t.clustered() || hash_slot(&from) == hash_slot(&to) {
            self.run(&from, redis::cmd("RENAME").arg(&from).arg(&to), "RENAME")?;
            return Ok(());
        }
        let t = self.get_tensor_key(&from, old)?;
        self.put_tensor_key(&to, &t)?;
        self.delete_keys(&[from])
    }

    /// Whether a tensor exists.
    pub fn tensor_exists(&mut self, name: &str) -> Result<bool> {
        check(name, "tensor")?;
        let key = self.tensor_key(name, false);
        self.exists(&key)
    }

    /// Whether a raw key exists (no prefix).
    pub fn key_exists(&mut self, key: &str) -> Result<bool> {
        check(key, "key")?;
        self.exists(key.as_bytes())
    }

    /// Check for a tensor `tries` times, `interval_ms` apart.
    pub fn poll_tensor(&mut self, name: &str, interval_ms: u64, tries: u64) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.tensor_exists(name))
    }

    /// Check for a raw key `tries` times, `interval_ms` apart.
    pub fn poll_key(&mut self, key: &str, interval_ms: u64, tries: u64) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.key_exists(key))
    }

    // ---- datasets ----

    fn put_dataset_at(&mut self, ds_key: &str, ds: &DataSet) -> Result<()> {
        let fields = ds.meta_fields();
        if fields.is_empty() && ds.tensors().is_empty() {
            return Err(Error::invalid(format!(
                "dataset {} has no tensors and no metadata",
                ds.name()
            )));
        }
        let meta = format!("{ds_key}.meta");
        let mut p = Pipeline::new();
        p.cmd("DEL").arg(&meta);
        if !fields.is_empty() {
            let c = p.cmd("HMSET").arg(&meta);
            for (k, v) in &fields {
                c.arg(k).arg(v.as_slice());
            }
        }
        for (n, t) in ds.tensors() {
            p.add_command(Self::tensorset(format!("{ds_key}.{n}").as_bytes(), t));
        }
        p.cmd("HSET").arg(&meta).arg(COMPLETE).arg("1");
        let replies = self.t.pipeline(meta.as_bytes(), &p, "put_dataset")?;
        pipeline_errors("put_dataset", &replies)
    }

    /// Store a dataset: its metadata hash, its tensors, then the `.COMPLETE` mark.
    pub fn put_dataset(&mut self, ds: &DataSet) -> Result<()> {
        let key = self.dataset_key(ds.name(), true);
        self.put_dataset_at(&key, ds)
    }

    /// Read a dataset by its full key (`P.{name}`).
    fn get_dataset_at(&mut self, ds_key: &str) -> Result<DataSet> {
        let name = match (ds_key.find('{'), ds_key.rfind('}')) {
            (Some(a), Some(b)) if b > a => ds_key[a + 1..b].to_string(),
            _ => ds_key.to_string(),
        };
        let meta = format!("{ds_key}.meta");
        let v = self.run(meta.as_bytes(), redis::cmd("HGETALL").arg(&meta), "HGETALL")?;
        let pairs: Vec<(String, Vec<u8>)> = match v {
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|c| Some((text(&c[0]), bytes(c.get(1)?)?)))
                .collect(),
            Value::Map(m) => m
                .iter()
                .filter_map(|(k, v)| Some((text(k), bytes(v)?)))
                .collect(),
            _ => Vec::new(),
        };
        if pairs.is_empty() {
            return Err(Error::NotFound {
                what: "dataset",
                name,
            });
        }
        let (mut ds, tensor_names) = DataSet::from_meta(&name, pairs)?;
        if !tensor_names.is_empty() {
            let mut p = Pipeline::new();
            for t in &tensor_names {
                p.cmd("AI.TENSORGET")
                    .arg(format!("{ds_key}.{t}"))
                    .arg("META")
                    .arg("BLOB");
            }
            let replies = self.t.pipeline(meta.as_bytes(), &p, "get_dataset")?;
            pipeline_errors("get_dataset", &replies)?;
            for (t, r) in tensor_names.into_iter().zip(replies) {
                let tensor = parse_tensor(&t, r)?;
                ds.insert_tensor(t, tensor);
            }
        }
        Ok(ds)
    }

    /// Read a dataset.
    pub fn get_dataset(&mut self, name: &str) -> Result<DataSet> {
        check(name, "dataset")?;
        let key = self.dataset_key(name, false);
        self.get_dataset_at(&key)
    }

    /// Delete a dataset (metadata and tensors).
    pub fn delete_dataset(&mut self, name: &str) -> Result<()> {
        let ds = self.get_dataset(name)?;
        let key = self.dataset_key(name, false);
        let mut keys = vec![format!("{key}.meta").into_bytes()];
        keys.extend(
            ds.tensor_names()
                .iter()
                .map(|t| format!("{key}.{t}").into_bytes()),
        );
        let mut cmd = redis::cmd("DEL");
        for k in &keys {
            cmd.arg(k.as_slice());
        }
        self.run(&keys[0], &cmd, "DEL")?;
        Ok(())
    }

    /// Copy a dataset under a new name.
    pub fn copy_dataset(&mut self, src: &str, dest: &str) -> Result<()> {
        check(dest, "dataset")?;
        let mut ds = self.get_dataset(src)?;
        ds.set_name(dest)?;
        self.put_dataset(&ds)
    }

    /// Rename a dataset (copy, then delete).
    pub fn rename_dataset(&mut self, old: &str, new: &str) -> Result<()> {
        self.copy_dataset(old, new)?;
        self.delete_dataset(old)
    }

    /// Whether a complete dataset exists.
    pub fn dataset_exists(&mut self, name: &str) -> Result<bool> {
        check(name, "dataset")?;
        let meta = format!("{}.meta", self.dataset_key(name, false));
        Ok(matches!(
            self.run(
                meta.as_bytes(),
                redis::cmd("HEXISTS").arg(&meta).arg(COMPLETE),
                "HEXISTS"
            )?,
            Value::Int(1)
        ))
    }

    /// Check for a complete dataset `tries` times, `interval_ms` apart.
    pub fn poll_dataset(&mut self, name: &str, interval_ms: u64, tries: u64) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.dataset_exists(name))
    }

    // ---- aggregation lists ----

    /// Append a dataset (already put) to a list.
    pub fn append_to_list(&mut self, list: &str, ds: &DataSet) -> Result<()> {
        check(list, "list")?;
        let key = self.list_key(list, true);
        let entry = self.dataset_key(ds.name(), true);
        self.run(&key, redis::cmd("RPUSH").arg(&key).arg(&entry), "RPUSH")?;
        Ok(())
    }

    /// Delete a list (not its datasets).
    pub fn delete_list(&mut self, list: &str) -> Result<()> {
        check(list, "list")?;
        let key = self.list_key(list, false);
        self.run(&key, redis::cmd("DEL").arg(&key), "DEL")?;
        Ok(())
    }

    fn list_entries(&mut self, key: &[u8], start: i64, end: i64) -> Result<Vec<String>> {
        match self.run(
            key,
            redis::cmd("LRANGE").arg(key).arg(start).arg(end),
            "LRANGE",
        )? {
            Value::Array(items) => Ok(items.iter().map(text).collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// Copy a list.
    pub fn copy_list(&mut self, src: &str, dest: &str) -> Result<()> {
        check(src, "list")?;
        check(dest, "list")?;
        let (from, to) = (self.list_key(src, false), self.list_key(dest, true));
        let entries = self.list_entries(&from, 0, -1)?;
        if entries.is_empty() {
            return Err(Error::NotFound {
                what: "aggregation list",
                name: src.into(),
            });
        }
        self.run(&to, redis::cmd("DEL").arg(&to), "DEL")?;
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(&to);
        for e in &entries {
            cmd.arg(e);
        }
        self.run(&to, &cmd, "RPUSH")?;
        Ok(())
    }

    /// Rename a list (copy, then delete).
    pub fn rename_list(&mut self, src: &str, dest: &str) -> Result<()> {
        self.copy_list(src, dest)?;
        self.delete_list(src)
    }

    /// The number of datasets in a list.
    pub fn get_list_length(&mut self, list: &str) -> Result<u64> {
        check(list, "list")?;
        let key = self.list_key(list, false);
        Ok(
            match self.run(&key, redis::cmd("LLEN").arg(&key), "LLEN")? {
                Value::Int(n) => n.max(0) as u64,
                _ => 0,
            },
        )
    }

    /// Wait until a list has exactly `length` entries.
    pub fn poll_list_length(
        &mut self,
        list: &str,
        length: u64,
        interval_ms: u64,
        tries: u64,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| {
            Ok(c.get_list_length(list)? == length)
        })
    }

    /// Wait until a list has at least `length` entries.
    pub fn poll_list_length_gte(
        &mut self,
        list: &str,
        length: u64,
        interval_ms: u64,
        tries: u64,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| {
            Ok(c.get_list_length(list)? >= length)
        })
    }

    /// Wait until a list has at most `length` entries.
    pub fn poll_list_length_lte(
        &mut self,
        list: &str,
        length: u64,
        interval_ms: u64,
        tries: u64,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| {
            Ok(c.get_list_length(list)? <= length)
        })
    }

    /// Every dataset of a list.
    pub fn get_datasets_from_list(&mut self, list: &str) -> Result<Vec<DataSet>> {
        self.get_dataset_list_range(list, 0, -1)
    }

    /// The datasets of a list between `start` and `end` (inclusive; negative counts from the end).
    pub fn get_dataset_list_range(
        &mut self,
        list: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<DataSet>> {
        check(list, "list")?;
        let key = self.list_key(list, false);
        let entries = self.list_entries(&key, start, end)?;
        entries.iter().map(|e| self.get_dataset_at(e)).collect()
    }

    // ---- models and scripts ----

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
    fn placements(&self, key: &[u8]) -> Vec<(String, Vec<u8>)> {
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

    fn validate_model(backend: &str, o: &ModelOptions) -> Result<()> {
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

    fn modelstore(key: &[u8], model: &[u8], backend: &str, o: &ModelOptions, chunk: u64) -> Cmd {
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

    fn delete_everywhere(
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

    fn run_ai(
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

    // ---- admin ----

    fn check_address(&self, addr: &str) -> Result<()> {
        if self.t.shards().iter().any(|s| s.address == addr)
            || self.t.cfg.addresses.iter().any(|a| a == addr)
        {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{addr} is not an address of this database ({})",
                self.t.cfg.addresses.join(",")
            )))
        }
    }

    /// `INFO EVERYTHING` of each address, as `{section: {key: value}}`.
    pub fn get_db_node_info(
        &mut self,
        addresses: &[&str],
    ) -> Result<Vec<BTreeMap<String, BTreeMap<String, String>>>> {
        addresses
            .iter()
            .map(|a| {
                self.check_address(a)?;
                let v =
                    self.t
                        .run_on(a, redis::cmd("INFO").arg("EVERYTHING"), "INFO EVERYTHING")?;
                let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
                let mut section = String::new();
                for line in text(&v).lines() {
                    if let Some(s) = line.strip_prefix("# ") {
                        section = s.trim().to_string();
                    } else if let Some((k, v)) = line.split_once(':') {
                        out.entry(section.clone())
                            .or_default()
                            .insert(k.into(), v.trim().into());
                    }
                }
                Ok(out)
            })
            .collect()
    }

    /// `CLUSTER INFO` of each address (clusters only).
    pub fn get_db_cluster_info(
        &mut self,
        addresses: &[&str],
    ) -> Result<Vec<BTreeMap<String, String>>> {
        if !self.t.clustered() {
            return Err(Error::invalid("Cannot run on non-cluster environment"));
        }
        addresses
            .iter()
            .map(|a| {
                self.check_address(a)?;
                let v = self
                    .t
                    .run_on(a, redis::cmd("CLUSTER").arg("INFO"), "CLUSTER INFO")?;
                Ok(text(&v)
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.into(), v.trim().into()))
                    .collect())
            })
            .collect()
    }

    /// `AI.INFO` of a model or script on one address (`{key: value}`).
    pub fn get_ai_info(
        &mut self,
        address: &str,
        name: &str,
        reset_stat: bool,
    ) -> Result<BTreeMap<String, String>> {
        self.check_address(address)?;
        let key = self.model_key(name, false);
        let k = if self.t.clustered() {
            let shard = self
                .t
                .shards()
                .into_iter()
                .find(|s| s.address == address)
                .ok_or_else(|| Error::invalid("unknown shard"))?;
            let mut v = b"{".to_vec();
            v.extend(shard_prefix(shard.lowest_slot));
            v.extend(b"}.");
            v.extend(&key);
            v
        } else {
            key
        };
        let mut cmd = redis::cmd("AI.INFO");
        cmd.arg(&k);
        if reset_stat {
            cmd.arg("RESETSTAT");
        }
        match self.t.run_on(address, &cmd, "AI.INFO")? {
            Value::Array(items) => Ok(items
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (text(&c[0]), text(&c[1])))
                .collect()),
            _ => Ok(BTreeMap::new()),
        }
    }

    /// `FLUSHDB` on each address.
    pub fn flush_db(&mut self, addresses: &[&str]) -> Result<()> {
        for a in addresses {
            self.check_address(a)?;
            self.t.run_on(a, &redis::cmd("FLUSHDB"), "FLUSHDB")?;
        }
        Ok(())
    }

    /// `CONFIG GET expr` on one address.
    pub fn config_get(&mut self, expr: &str, address: &str) -> Result<BTreeMap<String, String>> {
        self.check_address(address)?;
        match self.t.run_on(
            address,
            redis::cmd("CONFIG").arg("GET").arg(expr),
            "CONFIG GET",
        )? {
            Value::Array(items) => Ok(items
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (text(&c[0]), text(&c[1])))
                .collect()),
            Value::Map(m) => Ok(m.iter().map(|(k, v)| (text(k), text(v))).collect()),
            _ => Ok(BTreeMap::new()),
        }
    }

    /// `CONFIG SET param value` on one address.
    pub fn config_set(&mut self, param: &str, value: &str, address: &str) -> Result<()> {
        self.check_address(address)?;
        self.t.run_on(
            address,
            redis::cmd("CONFIG").arg("SET").arg(param).arg(value),
            "CONFIG SET",
        )?;
        Ok(())
    }

    /// `SAVE` on each address.
    pub fn save(&mut self, addresses: &[&str]) -> Result<()> {
        for a in addresses {
            self.check_address(a)?;
            self.t.run_on(a, &redis::cmd("SAVE"), "SAVE")?;
        }
        Ok(())
    }
}
